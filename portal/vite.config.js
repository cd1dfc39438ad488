// The portal is built into dist/ and served by the gateway at "/" (the API stays at
// /api/v1). `npm run dev` proxies the API to a gateway on QUDAO_GATEWAY_URL.
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  plugins: [vue()],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    chunkSizeWarningLimit: 2000,
  },
  server: {
    proxy: { '/api': process.env.QUDAO_GATEWAY_URL || 'http://127.0.0.1:8080' },
  },
})
