// The signed-in user's unread inbox count, shared by the layouts' badges and the inbox
// pages: read once per page change, again after marking items read.
import { ref } from 'vue'
import { listInbox } from '../api/engagement'

export const unread = ref(0)

export async function refreshUnread() {
  try {
    unread.value = Number((await listInbox({ unread_only: true, page_size: 1 })).unread_count || 0)
  } catch {
    // A badge is no reason to fail a page: keep the last count.
  }
}
