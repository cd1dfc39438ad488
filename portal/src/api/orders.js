// Catalog and price lists, dealer accounts, orders, shipments and receipts,
// discrepancies, returns, statements and channel inventory.
import { download, get, post, upload } from './http'

export const listProducts = (query) => get('/products', query)
export const importProducts = (file, options) => upload('/products/import', file, options)
export const listPriceLists = (query) => get('/price-lists', query)

export const getDealerAccount = (dealerId) => get(`/dealer-accounts/${dealerId}`)
export const listDealerAccounts = (query) => get('/dealer-accounts', query)

export const submitOrder = (body) => post('/orders', body)
export const listOrders = (query) => get('/orders', query)
export const getOrder = (id) => get(`/orders/${id}`)
export const approveOrder = (id, stage, comment = '') => post(`/orders/${id}/approve`, { stage, comment })
export const rejectOrder = (id, stage, reason) => post(`/orders/${id}/reject`, { stage, reason })
export const cancelOrder = (id, reason) => post(`/orders/${id}/cancel`, { reason })

export const listShipments = (query) => get('/shipments', query)
export const getShipment = (id) => get(`/shipments/${id}`)
export const confirmReceipt = (id, lines) => post(`/shipments/${id}/receipt`, { lines })
export const listDiscrepancies = (query) => get('/discrepancies', query)
export const resolveDiscrepancy = (id, resolution, note) =>
  post(`/discrepancies/${id}/resolve`, { resolution, note })

export const requestReturn = (body) => post('/returns', body)
export const listReturns = (query) => get('/returns', query)
export const approveReturn = (id, comment = '') => post(`/returns/${id}/approve`, { comment })
export const rejectReturn = (id, reason) => post(`/returns/${id}/reject`, { reason })

export const listStatements = (query) => get('/statements', query)
export const getStatement = (id) => get(`/statements/${id}`)
export const issueStatement = (body) => post('/statements', body)
export const confirmStatement = (id, comment = '') => post(`/statements/${id}/confirm`, { comment })
export const disputeStatementLine = (id, lineNo, reason) =>
  post(`/statements/${id}/lines/${lineNo}/dispute`, { reason })
export const exportStatement = (id) => download(`/statements/${id}/export`, {}, `statement-${id}.xlsx`)

export const listChannelInventory = (query) => get('/channel-inventory', query)
