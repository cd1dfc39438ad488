// Runs a user's action (approve, submit, confirm): busy flag, success toast, and the
// API's problem detail as the error toast. Phone pages toast with Vant, the console
// with Element Plus.
import { ref } from 'vue'
import { ElMessage } from 'element-plus'
import { showFailToast, showSuccessToast } from 'vant'
import { useI18n } from 'vue-i18n'

export function useAction({ mobile = false } = {}) {
  const busy = ref(false)
  const error = ref(null)
  const { t } = useI18n()

  async function run(action, success) {
    busy.value = true
    error.value = null
    try {
      const result = await action()
      if (success) mobile ? showSuccessToast(t(success)) : ElMessage.success(t(success))
      return result
    } catch (caught) {
      error.value = caught
      const message = caught.detail || caught.message || t('common.failed')
      mobile ? showFailToast({ message, wordBreak: 'break-word' }) : ElMessage.error(message)
      return undefined
    } finally {
      busy.value = false
    }
  }

  return { busy, error, run }
}

// Asks the console user for a reason (rejections, resolutions); null when cancelled.
export async function promptReason(t, title, { required = true } = {}) {
  const { ElMessageBox } = await import('element-plus')
  try {
    const { value } = await ElMessageBox.prompt(t('common.reasonPrompt'), t(title), {
      confirmButtonText: t('common.ok'),
      cancelButtonText: t('common.cancel'),
      inputValidator: (text) => !required || Boolean(text && text.trim()) || t('common.reasonRequired'),
    })
    return value?.trim() || ''
  } catch {
    return null
  }
}

// Approve and reject from a console queue: approve at once, reject with a reason; the
// queue reloads after a decision.
export function useDecisions() {
  const { t } = useI18n()
  const { busy, run } = useAction()
  const approve = async (call, reload) => {
    if (await run(call, 'approval.approved')) reload()
  }
  const reject = async (call, reload) => {
    const reason = await promptReason(t, 'approval.reject')
    if (reason !== null && (await run(() => call(reason), 'approval.rejected'))) reload()
  }
  return { busy, approve, reject }
}
