// Loads what a page shows when it opens: the loader fills the page's own refs; this
// keeps the loading flag and the error (shown with ProblemView and its retry).
import { onMounted, ref } from 'vue'

export function useLoad(loader) {
  const loading = ref(true)
  const error = ref(null)

  async function load() {
    loading.value = true
    error.value = null
    try {
      await loader()
    } catch (caught) {
      error.value = caught
    } finally {
      loading.value = false
    }
  }

  onMounted(load)
  return { loading, error, load }
}
