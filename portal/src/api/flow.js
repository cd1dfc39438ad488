// Sell-through (流向) uploads and diversions, as the flow service's API
// (qudao.flow.v1) reaches the gateway: the menu shows these pages once /openapi.json
// lists their paths.
import { download, get, post, upload } from './http'

export const uploadFlowFile = (file, options) => upload('/flow-uploads', file, options)
export const listUploads = (query) => get('/flow-uploads', query)
export const getUpload = (id) => get(`/flow-uploads/${id}`)
export const listUploadErrors = (id, query) => get(`/flow-uploads/${id}/errors`, query)
export const downloadErrorReport = (id) =>
  download(`/flow-uploads/${id}/error-report`, {}, `flow-errors-${id}.xlsx`)
export const listDiversions = (query) => get('/diversions', query)
export const resolveDiversion = (id, body) => post(`/diversions/${id}/resolve`, body)
