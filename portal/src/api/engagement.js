// Engagement: SOP tasks and their execution, dealer health, and the signed-in user's
// notifications inbox (qudao.engagement.v1 through the gateway).
import { get, patch, post } from './http'

export const listTasks = (query) => get('/tasks', query)
export const sopExecution = (query) => get('/sop-execution', query)
export const listSopRules = (query) => get('/sop-rules', query)
export const listDealerHealth = (query) => get('/dealer-health', query)
export const listInbox = (query) => get('/inbox', query)
export const markRead = (body) => post('/inbox/read', body)
export const createSopRule = (body) => post('/sop-rules', body)
export const switchSopRule = (id, active) => patch(`/sop-rules/${id}`, { active })
