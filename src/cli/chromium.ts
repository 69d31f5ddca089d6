// How tabswarm starts Debian's Chromium headless, for the demo's tabs and the browser test suites alike.
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  // Nothing phoning home: on a closed network Chromium's own connections would be refused, many at a time.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  // WebRTC on loopback: needed together with a media permission (see the loopback notes).
  '--allow-loopback-in-peer-connection',
  // WebGPU; with no GPU, Chromium 156 headless gives a SwiftShader adapter (vendor google, architecture swiftshader).
  '--enable-unsafe-webgpu',
  // Background tabs must not be throttled: a swarm tab is usually not the visible one.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];
