// Commissions and rebates. Accruals are served today; rebate programs, what-if and
// settlement follow the incentive service's API (qudao.incentive.v1) as the gateway adds
// them: the menu shows those pages once /openapi.json lists their paths.
import { get, post } from './http'

export const listAccruals = (query) => get('/accruals', query)

export const listRebatePrograms = (query) => get('/rebate-programs', query)
export const getWhatIf = (programId, query) => get(`/rebate-programs/${programId}/what-if`, query)
export const listSettlementPeriods = (query) => get('/settlement-periods', query)
export const closeSettlementPeriod = (body) => post('/settlement-periods', body)
export const settlePeriod = (id) => post(`/settlement-periods/${id}/approve`, {})
export const listSettlements = (query) => get('/settlements', query)
