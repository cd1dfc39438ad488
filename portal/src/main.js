import { createApp } from 'vue'
import ElementPlus from 'element-plus'
import 'element-plus/dist/index.css'
import * as ElementIcons from '@element-plus/icons-vue'
import Vant from 'vant'
import 'vant/lib/index.css'
import App from './App.vue'
import { router } from './router'
import { i18n } from './i18n'
import './styles.css'

const app = createApp(App)
for (const [name, component] of Object.entries(ElementIcons)) app.component(`ElIcon${name}`, component)
app.use(i18n).use(router).use(ElementPlus).use(Vant)
app.mount('#app')
