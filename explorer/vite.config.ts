import { defineConfig } from 'vite';

// The node serves the built app under /explorer/, and it must also work from
// any other path: every URL in the output is relative.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // No inline scripts (CSP script-src 'self'), no polyfill injected.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    reportCompressedSize: false,
  },
  server: { strictPort: true },
  preview: { strictPort: true },
});
