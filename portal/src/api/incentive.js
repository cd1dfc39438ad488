// Commissions and rebates as the gateway serves the incentive service
// (qudao.incentive.v1): accruals, rebate programs and their versions, what-if, targets
// and achievement, settlement periods, statements and their XLSX export.
import { download, get, post, put, upload } from './http'

export const listAccruals = (query) => get('/accruals', query)

export const listRebatePrograms = (query) => get('/rebate-programs', query)
export const getRebateProgram = (id) => get(`/rebate-programs/${id}`)
export const createRebateProgram = (program) => post('/rebate-programs', { program })
export const newProgramVersion = (id, program, effectiveFrom) =>
  post(`/rebate-programs/${id}/versions`, { program, effective_from: effectiveFrom })
export const getWhatIf = (programId, query) => get(`/rebate-programs/${programId}/what-if`, query)

export const listTargets = (query) => get('/targets', query)
export const setTargets = (targets) => put('/targets', { targets })
// All or nothing: accepted when no row failed (the import dialog's verdict).
export const importTargets = async (file, options) => {
  const result = await upload('/targets/import', file, options)
  return { ...result, accepted: !result.errors?.length }
}
export const getAchievement = (dealerId, query) => get(`/dealers/${dealerId}/achievement`, query)

export const listSettlementPeriods = (query) => get('/settlement-periods', query)
export const closeSettlementPeriod = (body) => post('/settlement-periods', body)
export const settlePeriod = (id) => post(`/settlement-periods/${id}/approve`, {})
export const listSettlements = (query) => get('/settlements', query)
export const exportSettlement = (id) => download(`/settlements/${id}/export`, {}, `rebate-statement-${id}.xlsx`)
