// The signed-in user's unread inbox count, shared by the layouts' badges and the inbox
// pages: read on every page change, every minute while the app is open (notices arrive
// at any time), and again after marking items read.
import { onUnmounted, ref, watch } from 'vue'
import { listInbox } from '../api/engagement'

export const unread = ref(0)
const POLL_MS = 60_000

export async function refreshUnread() {
  try {
    unread.value = Number((await listInbox({ unread_only: true, page_size: 1 })).unread_count || 0)
  } catch {
    // A badge is no reason to fail a page: keep the last count.
  }
}

// For a layout: keep the count fresh while it is shown.
export function followUnread(route) {
  watch(() => route.fullPath, refreshUnread, { immediate: true })
  const timer = setInterval(refreshUnread, POLL_MS)
  onUnmounted(() => clearInterval(timer))
}
