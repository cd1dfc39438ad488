// The dashboard's charts. Each one reads one API call (load), knows when that answer is
// empty, and turns it into an ECharts option. Charts whose aggregate endpoint does not
// exist yet name it in `api`: they appear once /openapi.json lists that path.
import { getFunnel } from '../api/registration'
import { get } from '../api/http'

const PALETTE = ['#1f5fbf', '#2f7be5', '#5b9bf0', '#8dbaf5', '#12b76a', '#f79009', '#7a5af8', '#ee46bc']
const yuanOf = (money) => Number(money?.amount_minor || 0) / 100
const stageLabel = (t, stage) => t(`stage.${stage}`)
const sumStages = (group) => group.stages.reduce((sum, s) => sum + Number(s.count), 0)
const funnelEmpty = (data) => !data.groups.some((group) => sumStages(group) > 0)
// Axis labels in the reader's units (400万 / 4M): full numbers of yuan crowd the axis out.
const compact = (locale) => {
  const formatter = new Intl.NumberFormat(locale === 'en' ? 'en' : 'zh-CN', { notation: 'compact', maximumFractionDigits: 1 })
  return (value) => formatter.format(value)
}
const yuanTooltip = (value) => `¥${Number(value).toLocaleString('zh-CN', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`

// Every month from the first to the last, so a quiet month shows as a gap, not as
// neighbours drawn together.
function monthRange(months) {
  if (!months.length) return []
  const sorted = [...months].sort()
  const [first, last] = [sorted[0], sorted[sorted.length - 1]]
  const range = []
  let [year, month] = first.split('-').map(Number)
  for (let guard = 0; guard < 240; guard += 1) {
    const key = `${year}-${String(month).padStart(2, '0')}`
    range.push(key)
    if (key >= last) break
    month += 1
    if (month > 12) { month = 1; year += 1 }
  }
  return range
}

function stackedByGroup(data, t) {
  const groups = data.groups.filter((group) => sumStages(group) > 0)
  return {
    color: PALETTE,
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { bottom: 0 },
    grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
    xAxis: { type: 'category', data: groups.map((group) => group.label || group.key) },
    yAxis: { type: 'value', minInterval: 1 },
    series: data.stages.map((stage) => ({
      name: stageLabel(t, stage),
      type: 'bar',
      stack: 'stages',
      barMaxWidth: 48,
      data: groups.map((group) => Number(group.stages.find((s) => s.stage === stage)?.count || 0)),
    })),
  }
}

export const CHARTS = [
  {
    id: 'funnel',
    title: 'dashboard.funnel',
    source: 'GET /api/v1/funnel',
    load: (params) => getFunnel(params),
    isEmpty: funnelEmpty,
    option: (data, t) => {
      const totals = data.stages.map((stage) =>
        data.groups.reduce((sum, group) => sum + Number(group.stages.find((s) => s.stage === stage)?.count || 0), 0),
      )
      return {
        color: PALETTE,
        tooltip: { trigger: 'item', formatter: '{b}: {c}' },
        series: [{
          type: 'funnel',
          sort: 'none',
          left: '10%',
          width: '80%',
          minSize: '20%',
          label: { show: true, position: 'inside', formatter: '{b}  {c}', color: '#fff' },
          data: data.stages.map((stage, index) => ({ name: stageLabel(t, stage), value: totals[index] })),
        }],
      }
    },
  },
  {
    id: 'funnel-by-region',
    title: 'dashboard.byRegion',
    source: 'GET /api/v1/funnel?group_by=region',
    load: (params) => getFunnel({ ...params, group_by: 'region' }),
    isEmpty: funnelEmpty,
    option: stackedByGroup,
  },
  {
    id: 'funnel-by-product-line',
    title: 'dashboard.byProductLine',
    source: 'GET /api/v1/funnel?group_by=product_line',
    load: (params) => getFunnel({ ...params, group_by: 'product_line' }),
    isEmpty: funnelEmpty,
    option: stackedByGroup,
  },
  {
    id: 'dealer-pipeline',
    title: 'dashboard.dealerPipeline',
    source: 'GET /api/v1/funnel?group_by=dealer',
    load: (params) => getFunnel({ ...params, group_by: 'dealer' }),
    isEmpty: funnelEmpty,
    option: (data, t) => {
      const top = data.groups.map((group) => ({ name: group.label || group.key, value: sumStages(group) }))
        .filter((entry) => entry.value > 0).sort((a, b) => b.value - a.value).slice(0, 10).reverse()
      return {
        color: PALETTE,
        tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
        grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
        xAxis: { type: 'value', minInterval: 1 },
        yAxis: { type: 'category', data: top.map((entry) => entry.name), axisLabel: { width: 180, overflow: 'truncate' } },
        series: [{ type: 'bar', data: top.map((entry) => entry.value), barMaxWidth: 22, label: { show: true, position: 'right' } }],
      }
    },
  },
  {
    id: 'orders-by-region-month',
    title: 'dashboard.ordersByRegionMonth',
    source: 'GET /api/v1/stats/orders',
    api: '/api/v1/stats/orders',
    load: (params) => get('/stats/orders', { ...params, group_by: ['region', 'month'] }),
    isEmpty: (data) => !data.rows?.length,
    option: (data, t, locale) => {
      const months = monthRange([...new Set(data.rows.map((row) => row.month))])
      const regions = [...new Set(data.rows.map((row) => row.label || row.region_code))]
      return {
        color: PALETTE,
        tooltip: { trigger: 'axis', valueFormatter: yuanTooltip },
        // Two series per region: a scrolling legend above the plot, never over the axis.
        legend: { type: 'scroll', top: 0 },
        grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
        xAxis: { type: 'category', data: months },
        yAxis: { type: 'value', axisLabel: { formatter: compact(locale) } },
        // Per region: ordered (line) and sold through to customers (bars), in yuan.
        series: regions.flatMap((region) => {
          const of = (month) => data.rows.find((row) => row.month === month && (row.label || row.region_code) === region)
          return [
            { name: `${region} · ${t('dashboard.ordered')}`, type: 'line', data: months.map((month) => yuanOf(of(month)?.order_amount)) },
            { name: `${region} · ${t('dashboard.soldThrough')}`, type: 'bar', barMaxWidth: 28, data: months.map((month) => yuanOf(of(month)?.sell_through_amount)) },
          ]
        }),
      }
    },
  },
  {
    id: 'dealer-ranking',
    title: 'dashboard.dealerRanking',
    source: 'GET /api/v1/stats/dealer-ranking',
    api: '/api/v1/stats/dealer-ranking',
    load: (params) => get('/stats/dealer-ranking', { ...params, metric: 'order_amount', limit: 10 }),
    isEmpty: (data) => !data.dealers?.length,
    option: (data, t, locale) => ({
      color: PALETTE,
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: yuanTooltip },
      grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
      xAxis: { type: 'value', axisLabel: { formatter: compact(locale) } },
      yAxis: { type: 'category', data: [...data.dealers].reverse().map((d) => d.name) },
      series: [{ type: 'bar', data: [...data.dealers].reverse().map((d) => yuanOf(d.order_amount)), barMaxWidth: 22 }],
    }),
  },
  {
    id: 'inventory-by-product',
    title: 'dashboard.inventoryByProduct',
    source: 'GET /api/v1/stats/channel-inventory',
    api: '/api/v1/stats/channel-inventory',
    load: (params) => get('/stats/channel-inventory', { ...params, group_by: 'product' }),
    isEmpty: (data) => !data.products?.length,
    option: (data, t) => ({
      color: PALETTE,
      tooltip: { trigger: 'axis' },
      legend: { bottom: 0 },
      grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
      // Every product named, slanted and cut short, rather than every fifth one.
      xAxis: { type: 'category', data: data.products.map((p) => p.name || p.product_code), axisLabel: { interval: 0, rotate: 30, width: 96, overflow: 'truncate' } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: t('inventory.onHand'), type: 'bar', data: data.products.map((p) => p.quantity_on_hand) },
        { name: t('inventory.sold'), type: 'bar', data: data.products.map((p) => p.quantity_sold) },
      ],
    }),
  },
  {
    id: 'rebates-accrued-settled',
    title: 'dashboard.rebates',
    source: 'GET /api/v1/stats/rebates',
    api: '/api/v1/stats/rebates',
    load: (params) => get('/stats/rebates', { ...params, group_by: 'month' }),
    isEmpty: (data) => !data.months?.length,
    option: (data, t, locale) => {
      const months = monthRange(data.months.map((m) => m.month))
      const of = (month) => data.months.find((m) => m.month === month)
      return {
        color: PALETTE,
        tooltip: { trigger: 'axis', valueFormatter: yuanTooltip },
        legend: { bottom: 0 },
        grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
        xAxis: { type: 'category', data: months },
        yAxis: { type: 'value', axisLabel: { formatter: compact(locale) } },
        series: [
          { name: t('dashboard.accrued'), type: 'bar', data: months.map((month) => yuanOf(of(month)?.accrued)) },
          { name: t('dashboard.settled'), type: 'bar', data: months.map((month) => yuanOf(of(month)?.settled)) },
        ],
      }
    },
  },
]
