// Chinese first, English on request; the choice is remembered in the browser.
import { createI18n } from 'vue-i18n'
import zh from './zh-CN'
import en from './en'

const saved = localStorage.getItem('qudao.locale')

export const i18n = createI18n({
  legacy: false,
  locale: saved === 'en' ? 'en' : 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zh, en },
})

export function setLocale(value) {
  i18n.global.locale.value = value
  localStorage.setItem('qudao.locale', value)
}
