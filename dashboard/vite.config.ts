/// <reference types="vitest/config" />
import { fileURLToPath, URL } from "node:url";
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

// The FL-API serves the build (lerna.server.spa), so the output lands inside the Python package;
// `npm run dev` proxies the API to a local `lerna serve` on port 8000.
const api = process.env.LERNA_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [vue()],
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  build: {
    outDir: process.env.LERNA_DASHBOARD_OUT ?? "../src/lerna/server/static/dashboard",
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
  server: { proxy: { "/api": api, "/recommender": api } },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.ts"],
  },
});
