// Notices (通知公告) with read receipts, and the material library (素材库).
import { download, get, post } from './http'

export const listNotices = (query) => get('/notices', query)
export const getNotice = (id) => get(`/notices/${id}`)
export const publishNotice = (body) => post('/notices', body)
export const confirmNotice = (id) => post(`/notices/${id}/confirm`)
export const downloadAttachment = (noticeId, attachment) => download(`/notices/${noticeId}/attachments/${attachment.id}`, {}, attachment.filename)
export const listReceipts = (id, query) => get(`/notices/${id}/receipts`, query)
export const exportReceipts = (id) => download(`/notices/${id}/receipts/export`, {}, 'receipts.xlsx')
export const remindNotice = (id) => post(`/notices/${id}/remind`)

export const listMaterials = (query) => get('/materials', query)
export const publishMaterial = (body) => post('/materials', body)
export const addMaterialVersion = (id, file) => post(`/materials/${id}/versions`, file)
export const downloadMaterial = (material) => download(`/materials/${material.id}/download`, {}, material.versions.at(-1)?.filename || 'material')
export const listMaterialUsage = (query) => get('/material-usage', query)

// A browser File as the API's {filename, content_type, content_base64}.
export async function fileBody(file) {
  const bytes = new Uint8Array(await file.arrayBuffer())
  let binary = ''
  for (let start = 0; start < bytes.length; start += 0x8000) binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000))
  return { filename: file.name, content_type: file.type || 'application/octet-stream', content_base64: btoa(binary) }
}

// The audience part of a publish request: dealers with any of the tags, named dealers.
export function audienceOf(tags, dealerIds) {
  return { dealer_ids: dealerIds, ...(tags.length ? { audience: { any_of: tags.map((tag) => ({ term: { tag } })) } } : {}) }
}
