// The dashboard's headline numbers: each one list call whose page.total_size is the count.
import { listConflicts, listLeads, listRegistrations } from '../api/registration'
import { listOrders } from '../api/orders'

const totalOf = async (call) => Number((await call).page?.total_size || 0)

export const KPIS = [
  { id: 'registrations', label: 'dashboard.kpiRegistrations', to: 'c-approve-registrations', roles: ['hq_admin', 'region_manager', 'channel_manager'],
    load: () => totalOf(listRegistrations({ status: ['submitted', 'under_review'], page_size: 1 })) },
  { id: 'orders', label: 'dashboard.kpiOrders', to: 'c-approve-orders', roles: ['hq_admin', 'region_manager', 'channel_manager', 'finance'],
    load: (stage) => totalOf(listOrders({ awaiting_approval: stage, page_size: 1 })) },
  { id: 'conflicts', label: 'dashboard.kpiConflicts', to: 'c-conflicts', roles: ['hq_admin', 'region_manager'],
    load: () => totalOf(listConflicts({ status: 'open', page_size: 1 })) },
  { id: 'leads', label: 'dashboard.kpiLeads', to: 'c-leads', roles: ['hq_admin', 'region_manager', 'channel_manager', 'customer_service'],
    load: () => totalOf(listLeads({ status: ['pool'], page_size: 1 })) },
]
