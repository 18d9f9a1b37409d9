// A page (the contact sheet, a pipeline report, an image) as headless Chromium renders it,
// for reviewing what people see. Needs `npm install @sparticuz/chromium puppeteer-core` (a
// Chromium build from the npm registry) in the directory it runs from.
// Usage: node screenshot.mjs URL OUT.png [WIDTH HEIGHT]
import chromium from "@sparticuz/chromium";
import puppeteer from "puppeteer-core";

const [, , url, out, width, height] = process.argv;
const browser = await puppeteer.launch({
  args: chromium.args,
  executablePath: await chromium.executablePath(),
  headless: true,
});
const page = await browser.newPage();
await page.setViewport({ width: Number(width || 1000), height: Number(height || 700) });
await page.goto(url, { waitUntil: "load" });
// Pictures load lazily as they scroll into view; a full-page shot shows them all, so every
// one is loaded first (or has failed to).
const images = await page.evaluate(async () => {
  const all = [...document.images];
  all.forEach((i) => { i.loading = "eager"; });
  await Promise.all(all.map((i) => i.complete ? null : new Promise((done) => {
    i.addEventListener("load", done);
    i.addEventListener("error", done);
    setTimeout(done, 10000);
  })));
  return { total: all.length, shown: all.filter((i) => i.naturalWidth > 0).length };
});
// Videos show their first frame once decoded; a video that cannot play says so.
const videos = await page.evaluate(async () => {
  const all = [...document.querySelectorAll("video")];
  await Promise.all(all.map((v) => v.readyState >= 2 ? null : new Promise((done) => {
    v.addEventListener("loadeddata", done);
    v.addEventListener("error", done);
    setTimeout(done, 10000);
  })));
  return all.map((v) => ({ src: v.src, width: v.videoWidth, height: v.videoHeight, duration: v.duration, error: v.error && v.error.code }));
});
await page.screenshot({ path: out, fullPage: true });
await browser.close();
console.log(JSON.stringify({ wrote: out, images, videos }));
