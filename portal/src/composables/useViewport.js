// Whether the screen is narrow (a phone), kept up to date as the window resizes.
import { onBeforeUnmount, ref } from 'vue'

export function useNarrow(maxWidth = 900) {
  const query = window.matchMedia(`(max-width: ${maxWidth}px)`)
  const narrow = ref(query.matches)
  const update = (event) => (narrow.value = event.matches)
  query.addEventListener('change', update)
  onBeforeUnmount(() => query.removeEventListener('change', update))
  return narrow
}
