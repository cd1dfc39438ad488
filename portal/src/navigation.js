// Every page of the portal in one place: its route, its title, who may open it (roles
// from the access token), the API path it needs (pages whose API is still being built
// stay hidden until /openapi.json lists it), and where it sits in the menus.
import { serves } from './api/capabilities'
import { session, DEALER_ROLES, HQ_ROLES } from './auth/session'

const DEALERS = DEALER_ROLES
const HQ = HQ_ROLES
const APPROVERS = ['hq_admin', 'region_manager', 'channel_manager']
const ORDER_APPROVERS = ['hq_admin', 'region_manager', 'channel_manager', 'finance']
const RETURN_DECIDERS = ['hq_admin', 'customer_service', 'channel_manager', 'region_manager']
const FINANCE = ['hq_admin', 'finance', 'customer_service']
const HQ_DECIDERS = ['hq_admin', 'region_manager']

const dealer = (path, name, component, meta) => ({ path: `/m/${path}`, name, component, meta: { roles: DEALERS, ...meta } })
const hq = (path, name, component, meta) => ({ path: `/console/${path}`, name, component, meta: { roles: HQ, ...meta } })

// The dealer's portal (phone first). tab: the bottom tab it belongs to; group: its
// section on the 我的 page and in the wide-screen side menu.
export const dealerPages = [
  dealer('home', 'm-home', () => import('./pages/dealer/Home.vue'), { title: 'nav.home', icon: 'wap-home-o', tab: 'home' }),
  dealer('order', 'm-order-new', () => import('./pages/dealer/OrderNew.vue'), { title: 'nav.orderNew', icon: 'shopping-cart-o', tab: 'order', group: 'orders' }),
  dealer('orders', 'm-orders', () => import('./pages/dealer/Orders.vue'), { title: 'nav.orders', icon: 'orders-o', group: 'orders' }),
  dealer('orders/:id', 'm-order', () => import('./pages/dealer/OrderDetail.vue'), { title: 'nav.orderDetail', back: 'm-orders' }),
  dealer('shipments', 'm-shipments', () => import('./pages/dealer/Shipments.vue'), { title: 'nav.shipments', icon: 'logistics', group: 'orders' }),
  dealer('shipments/:id', 'm-shipment', () => import('./pages/dealer/ShipmentDetail.vue'), { title: 'nav.shipmentDetail', back: 'm-shipments' }),
  dealer('returns', 'm-returns', () => import('./pages/dealer/Returns.vue'), { title: 'nav.returns', icon: 'revoke', group: 'orders' }),
  dealer('returns/new', 'm-return-new', () => import('./pages/dealer/ReturnNew.vue'), { title: 'nav.returnNew', back: 'm-returns' }),
  dealer('statements', 'm-statements', () => import('./pages/dealer/Statements.vue'), { title: 'nav.statements', icon: 'balance-list-o', group: 'money' }),
  dealer('statements/:id', 'm-statement', () => import('./pages/dealer/StatementDetail.vue'), { title: 'nav.statementDetail', back: 'm-statements' }),
  dealer('commissions', 'm-commissions', () => import('./pages/dealer/Commissions.vue'), { title: 'nav.commissions', icon: 'gold-coin-o', group: 'money' }),
  dealer('rebates', 'm-rebates', () => import('./pages/dealer/Rebates.vue'), { title: 'nav.rebates', icon: 'gift-o', group: 'money', api: '/api/v1/rebate-programs' }),
  dealer('flow', 'm-flow', () => import('./pages/dealer/FlowUploads.vue'), { title: 'nav.flow', icon: 'upgrade', group: 'orders', api: '/api/v1/flow/uploads' }),
  dealer('register', 'm-register', () => import('./pages/dealer/Register.vue'), { title: 'nav.register', icon: 'add-o', tab: 'register', group: 'customers' }),
  dealer('registrations', 'm-registrations', () => import('./pages/dealer/Registrations.vue'), { title: 'nav.registrations', icon: 'records-o', group: 'customers' }),
  dealer('leads', 'm-leads', () => import('./pages/dealer/Leads.vue'), { title: 'nav.leads', icon: 'flag-o', group: 'customers' }),
  dealer('authorizations', 'm-authorizations', () => import('./pages/dealer/Authorizations.vue'), { title: 'nav.authorizations', icon: 'certificate', group: 'customers' }),
  dealer('inbox', 'm-inbox', () => import('./pages/dealer/Inbox.vue'), { title: 'nav.inbox', icon: 'chat-o', tab: 'inbox', api: '/api/v1/inbox' }),
  dealer('tasks', 'm-tasks', () => import('./pages/dealer/Tasks.vue'), { title: 'nav.myTasks', icon: 'todo-list-o', group: 'customers', api: '/api/v1/tasks' }),
  dealer('notices', 'm-notices', () => import('./pages/dealer/Notices.vue'), { title: 'nav.notices', icon: 'bullhorn-o', group: 'info', api: '/api/v1/notices' }),
  dealer('notices/:id', 'm-notice', () => import('./pages/dealer/NoticeDetail.vue'), { title: 'nav.noticeDetail', back: 'm-notices' }),
  dealer('materials', 'm-materials', () => import('./pages/dealer/Materials.vue'), { title: 'nav.materials', icon: 'description', group: 'info', api: '/api/v1/materials' }),
  dealer('me', 'm-me', () => import('./pages/dealer/Me.vue'), { title: 'nav.me', icon: 'user-o', tab: 'me' }),
]

// HQ's and the channel managers' console (desktop).
export const consolePages = [
  hq('dashboard', 'c-dashboard', () => import('./pages/console/Dashboard.vue'), { title: 'nav.dashboard', icon: 'DataAnalysis', group: 'overview' }),
  hq('dealers', 'c-dealers', () => import('./pages/console/Dealers.vue'), { title: 'nav.dealers', icon: 'OfficeBuilding', group: 'channel' }),
  hq('users', 'c-users', () => import('./pages/console/Users.vue'), { title: 'nav.users', icon: 'User', group: 'channel', roles: ['hq_admin', 'region_manager'] }),
  hq('assignments', 'c-assignments', () => import('./pages/console/Assignments.vue'), { title: 'nav.assignments', icon: 'Connection', group: 'channel' }),
  hq('approvals/registrations', 'c-approve-registrations', () => import('./pages/console/RegistrationApprovals.vue'), { title: 'nav.approveRegistrations', icon: 'DocumentChecked', group: 'approvals', roles: APPROVERS }),
  hq('approvals/orders', 'c-approve-orders', () => import('./pages/console/OrderApprovals.vue'), { title: 'nav.approveOrders', icon: 'Tickets', group: 'approvals', roles: ORDER_APPROVERS }),
  hq('approvals/returns', 'c-approve-returns', () => import('./pages/console/ReturnApprovals.vue'), { title: 'nav.approveReturns', icon: 'RefreshLeft', group: 'approvals', roles: RETURN_DECIDERS }),
  hq('conflicts', 'c-conflicts', () => import('./pages/console/Conflicts.vue'), { title: 'nav.conflicts', icon: 'Warning', group: 'customers', roles: HQ_DECIDERS }),
  hq('registrations', 'c-registrations', () => import('./pages/console/Registrations.vue'), { title: 'nav.allRegistrations', icon: 'Document', group: 'customers' }),
  hq('leads', 'c-leads', () => import('./pages/console/Leads.vue'), { title: 'nav.leadPool', icon: 'Aim', group: 'customers' }),
  hq('orders', 'c-orders', () => import('./pages/console/Orders.vue'), { title: 'nav.allOrders', icon: 'List', group: 'trade' }),
  hq('statements', 'c-statements', () => import('./pages/console/Statements.vue'), { title: 'nav.statements', icon: 'Notebook', group: 'trade', roles: FINANCE }),
  hq('accounts', 'c-accounts', () => import('./pages/console/Accounts.vue'), { title: 'nav.accounts', icon: 'Wallet', group: 'trade', roles: FINANCE }),
  hq('discrepancies', 'c-discrepancies', () => import('./pages/console/Discrepancies.vue'), { title: 'nav.discrepancies', icon: 'Box', group: 'trade' }),
  hq('inventory', 'c-inventory', () => import('./pages/console/Inventory.vue'), { title: 'nav.inventory', icon: 'Goods', group: 'trade' }),
  hq('products', 'c-products', () => import('./pages/console/Products.vue'), { title: 'nav.products', icon: 'ShoppingBag', group: 'catalog' }),
  hq('price-lists', 'c-price-lists', () => import('./pages/console/PriceLists.vue'), { title: 'nav.priceLists', icon: 'PriceTag', group: 'catalog' }),
  hq('flow-uploads', 'c-flow-uploads', () => import('./pages/console/FlowUploads.vue'), { title: 'nav.flowUploads', icon: 'Upload', group: 'flow', api: '/api/v1/flow/uploads' }),
  hq('diversions', 'c-diversions', () => import('./pages/console/Diversions.vue'), { title: 'nav.diversions', icon: 'Warning', group: 'flow', api: '/api/v1/flow/diversions' }),
  hq('accruals', 'c-accruals', () => import('./pages/console/Accruals.vue'), { title: 'nav.accruals', icon: 'Coin', group: 'incentive' }),
  hq('rebate-programs', 'c-rebate-programs', () => import('./pages/console/RebatePrograms.vue'), { title: 'nav.rebatePrograms', icon: 'Present', group: 'incentive', api: '/api/v1/rebate-programs' }),
  hq('targets', 'c-targets', () => import('./pages/console/Targets.vue'), { title: 'nav.targets', icon: 'Aim', group: 'incentive', api: '/api/v1/targets' }),
  hq('settlements', 'c-settlements', () => import('./pages/console/Settlements.vue'), { title: 'nav.settlements', icon: 'Finished', group: 'incentive', api: '/api/v1/settlement-periods', roles: FINANCE }),
  hq('inbox', 'c-inbox', () => import('./pages/console/Inbox.vue'), { title: 'nav.inbox', icon: 'Bell', group: 'overview', api: '/api/v1/inbox' }),
  hq('tasks', 'c-tasks', () => import('./pages/console/Tasks.vue'), { title: 'nav.tasks', icon: 'Finished', group: 'followUp', api: '/api/v1/tasks' }),
  hq('sop-rules', 'c-sop-rules', () => import('./pages/console/SopRules.vue'), { title: 'nav.sopRules', icon: 'SetUp', group: 'followUp', api: '/api/v1/sop-rules', roles: ['hq_admin', 'region_manager', 'channel_manager'] }),
  hq('sop-execution', 'c-sop-execution', () => import('./pages/console/SopExecution.vue'), { title: 'nav.sopExecution', icon: 'TrendCharts', group: 'followUp', api: '/api/v1/sop-execution' }),
  hq('dealer-health', 'c-dealer-health', () => import('./pages/console/DealerHealth.vue'), { title: 'nav.dealerHealth', icon: 'FirstAidKit', group: 'followUp', api: '/api/v1/dealer-health' }),
  hq('notices', 'c-notices', () => import('./pages/console/Notices.vue'), { title: 'nav.notices', icon: 'Bell', group: 'info', api: '/api/v1/notices' }),
  hq('notices/:id/receipts', 'c-notice-receipts', () => import('./pages/console/NoticeReceipts.vue'), { title: 'nav.noticeReceipts' }),
  hq('materials', 'c-materials', () => import('./pages/console/Materials.vue'), { title: 'nav.materials', icon: 'Files', group: 'info', api: '/api/v1/materials' }),
  hq('material-usage', 'c-material-usage', () => import('./pages/console/MaterialUsage.vue'), { title: 'nav.materialUsage', icon: 'TrendCharts', group: 'info', api: '/api/v1/material-usage' }),
  hq('audit', 'c-audit', () => import('./pages/console/Audit.vue'), { title: 'nav.audit', icon: 'Memo', group: 'system', roles: ['hq_admin'] }),
]

export const GROUPS = {
  dealer: ['orders', 'customers', 'money', 'info'],
  console: ['overview', 'channel', 'followUp', 'approvals', 'customers', 'trade', 'catalog', 'flow', 'incentive', 'info', 'system'],
}

export const allowed = (page) => session.hasRole(...(page.meta.roles || [])) && serves(page.meta.api)

// The menu for the signed-in user: [{ group, pages: [...] }], empty groups left out.
export function menu(pages, groups) {
  return groups
    .map((group) => ({ group, pages: pages.filter((page) => page.meta.group === group && allowed(page)) }))
    .filter((entry) => entry.pages.length)
}

export const homeFor = () => (session.isDealer ? { name: 'm-home' } : { name: 'c-dashboard' })
