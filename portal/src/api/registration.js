// Customers and the duplicate check, registrations (报备), conflicts, leads (公海),
// the funnel, authorizations (授权) and their letters.
import { download, get, post, request, upload } from './http'

export const listCustomers = (query) => get('/customers', query)
export const checkDuplicates = (body, signal) =>
  request('POST', '/customers/check-duplicates', { body, signal })
export const importCustomers = (file, options) => upload('/customers/import', file, options)

export const submitRegistration = (body) => post('/registrations', body)
export const listRegistrations = (query) => get('/registrations', query)
export const listExpiring = (query) => get('/registrations/expiring', query)
export const getRegistration = (id) => get(`/registrations/${id}`)
export const approveRegistration = (id, comment = '') => post(`/registrations/${id}/approve`, { comment })
export const rejectRegistration = (id, reason) => post(`/registrations/${id}/reject`, { reason })
export const renewRegistration = (id, reason = '') => post(`/registrations/${id}/renew`, { reason })

export const getFunnel = (query) => get('/funnel', query)

export const listConflicts = (query) => get('/conflicts', query)
export const resolveConflict = (id, winningRegistrationId, note) =>
  post(`/conflicts/${id}/resolve`, { winning_registration_id: winningRegistrationId, note })

export const listLeads = (query) => get('/leads', query)
export const importLeads = (file, options) => upload('/leads/import', file, options)
export const assignLead = (id, dealerId, reason = '') => post(`/leads/${id}/assign`, { dealer_id: dealerId, reason })
export const claimLead = (id) => post(`/leads/${id}/claim`, {})
export const releaseLead = (id, reason = '') => post(`/leads/${id}/release`, { reason })

export const listAuthorizations = (query) => get('/authorizations', query)
export const downloadLetter = (id, format = 'pdf') =>
  download(`/authorizations/${id}/letter`, { format }, `authorization-${id}.${format}`)
