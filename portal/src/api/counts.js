// "How many" for the home page's to-do tiles: total_size where the list reports it,
// otherwise the items of a first page of up to 50 (shown as 50+ when there are more).
export async function countOf(fetch, itemsKey, query = {}) {
  const response = await fetch({ ...query, page_size: 50 })
  const reported = Number(response.page?.total_size || 0)
  const items = response[itemsKey] || []
  return { n: reported || items.length, more: !reported && Boolean(response.page?.next_page_token), items }
}
