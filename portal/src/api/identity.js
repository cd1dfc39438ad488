// Org units and dealers, tags, users and roles, assignments and hand-over, audit trail.
import { get, patch, post, put, upload } from './http'

export const listOrgUnits = (query) => get('/org-units', query)
export const getOrgUnit = (id) => get(`/org-units/${id}`)
export const updateOrgUnit = (id, body) => patch(`/org-units/${id}`, body)
export const importDealers = (file, options) => upload('/dealers/import', file, options)

export const listTags = (query) => get('/tags', query)
export const addDealerTags = (dealerIds, tags) => post('/dealer-tags', { dealer_ids: dealerIds, tags })
export const queryAudience = (body) => post('/audiences/query', body)

export const listUsers = (query) => get('/users', query)
export const createUser = (body) => post('/users', body)
export const updateUserRoles = (id, roles, reason) => put(`/users/${id}/roles`, { roles, reason })
export const deactivateUser = (id, body) => post(`/users/${id}/deactivate`, body)

export const listAssignments = (query) => get('/assignments', query)
export const assignDealers = (body) => post('/assignments', body)
export const transferAssignments = (body) => post('/assignments/transfer', body)

export const listAuditEvents = (query) => get('/audit-events', query)
