// One list from the API: token pagination (the API pages with next_page_token and
// reports total_size), filters, loading and error state. Desktop pages page back and
// forth; phone pages append ("load more").
import { reactive, ref, shallowRef } from 'vue'

export function useList(fetch, { itemsKey, pageSize = 20, filters = {}, append = false } = {}) {
  const items = shallowRef([])
  const loading = ref(false)
  const error = ref(null)
  const total = ref(0)
  const finished = ref(false)
  const query = reactive({ ...filters })
  // tokens[i] is the token of page i (the first page's is "").
  const tokens = ref([''])
  const pageIndex = ref(0)
  let generation = 0

  async function loadPage(index) {
    const mine = ++generation
    loading.value = true
    error.value = null
    try {
      const response = await fetch({ ...query, page_size: pageSize, page_token: tokens.value[index] })
      if (mine !== generation) return
      const rows = response[itemsKey] || []
      items.value = append && index > 0 ? [...items.value, ...rows] : rows
      const next = response.page?.next_page_token || ''
      // Some lists report total_size; for the others the total is known on the last page.
      const reported = Number(response.page?.total_size || 0)
      total.value = reported || (next ? 0 : index * pageSize + rows.length)
      tokens.value = [...tokens.value.slice(0, index + 1), ...(next ? [next] : [])]
      pageIndex.value = index
      finished.value = !next
    } catch (caught) {
      if (mine !== generation) return
      error.value = caught
      finished.value = true
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  const reload = () => {
    tokens.value = ['']
    finished.value = false
    return loadPage(0)
  }
  const hasNext = () => tokens.value.length > pageIndex.value + 1
  const next = () => (hasNext() ? loadPage(pageIndex.value + 1) : Promise.resolve())
  const prev = () => (pageIndex.value > 0 ? loadPage(pageIndex.value - 1) : Promise.resolve())
  const loadMore = () => (hasNext() ? loadPage(pageIndex.value + 1) : Promise.resolve())

  return { items, loading, error, total, finished, query, pageIndex, pageSize, reload, next, prev, hasNext, loadMore }
}
