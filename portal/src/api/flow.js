// Sell-through (流向) uploads, their live progress (server-sent events), errors and error
// report, accepted flow and diversions, as the gateway serves the flow service
// (qudao.flow.v1) under /api/v1/flow.
import { download, events, get, post, upload } from './http'

export const uploadFlowFile = (file, options) => upload('/flow/uploads', file, options)
export const listUploads = (query) => get('/flow/uploads', query)
export const getUpload = (id) => get(`/flow/uploads/${id}`)
// Calls onUpload(upload) on every change until the upload is final; resolves with it.
export const watchUpload = (id, onUpload, options) => events(`/flow/uploads/${id}/events`, (_kind, data) => onUpload(data), options)
export const listUploadErrors = (id, query) => get(`/flow/uploads/${id}/errors`, query)
export const downloadErrorReport = (id) =>
  download(`/flow/uploads/${id}/error-report`, {}, `flow-errors-${id}.xlsx`)
export const listFlowRows = (query) => get('/flow/rows', query)
export const exportFlowRows = (query) => download('/flow/rows/export', query, 'flow.xlsx')
export const listDiversions = (query) => get('/flow/diversions', query)
export const resolveDiversion = (id, body) => post(`/flow/diversions/${id}/resolve`, body)
