/**
 * The page `kubectl whatsapp qr NAME --web` serves: one self-contained HTML document (no
 * file, font or script from anywhere else) that draws the state it is given and then
 * follows the server's event stream (`events`, relative to the page). When a state is
 * final it stops listening; closing the stream is how the server learns the page showed it.
 */

/** What the page shows; built by pageState (qr-web.ts), sent as JSON. */
export interface PageState {
  readonly kind: "connected" | "cannotLink" | "pairingCode" | "qrText" | "qrPng" | "failed" | "waiting" | "stopped";
  readonly heading: string;
  /** The QR code as SVG markup, generated from its modules (qrSvg): no outside text in it. */
  readonly svg?: string;
  /** The provider's image, as a data: URL, for providers that give only an image. */
  readonly image?: string;
  /** A pairing code to type on the phone. */
  readonly code?: string;
  /** Instructions and what happens next, one paragraph each. */
  readonly lines: readonly string[];
  /** Nothing follows this state. */
  readonly final: boolean;
}

/** JSON that is safe inside a <script> element: no "</script>" or "<!--" can form. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** The Content-Security-Policy that goes with a page rendered with `nonce`. */
export function pageCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "img-src data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

export function renderPage(options: { readonly state: PageState; readonly nonce: string; readonly banner?: string | undefined }): string {
  const { state, nonce } = options;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(state.heading)}</title>
<style nonce="${nonce}">
  :root { color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: Canvas; color: CanvasText; }
  main { box-sizing: border-box; max-width: 44rem; padding: 1.5rem; text-align: center; }
  h1 { font-size: 1.5rem; margin: 0 0 1rem; }
  .banner { display: inline-block; margin: 0 0 1rem; padding: .25rem .75rem; border-radius: .25rem; background: #fde68a; color: #000; font-weight: 600; }
  #code svg, #code img { display: block; margin: 0 auto; max-width: 90vw; height: auto; background: #fff; image-rendering: pixelated; }
  #code .pairing { margin: 1rem 0; font: 700 2.5rem ui-monospace, monospace; letter-spacing: .15em; }
  #lines p { margin: .75rem 0; line-height: 1.4; }
  main[data-kind="connected"] h1 { color: #15803d; font-size: 2rem; }
  main[data-kind="failed"] h1, main[data-kind="cannotLink"] h1, main[data-kind="stopped"] h1 { color: #b91c1c; }
  #offline { color: #b45309; }
</style>
</head>
<body>
<main id="app" data-kind="${state.kind}">
${options.banner ? `<p class="banner">${escapeHtml(options.banner)}</p>` : ""}
<h1 id="heading"></h1>
<div id="code"></div>
<div id="lines"></div>
<p id="offline" hidden>Lost contact with kubectl whatsapp qr --web; retrying…</p>
</main>
<script nonce="${nonce}" id="initial" type="application/json">${scriptJson(state)}</script>
<script nonce="${nonce}">
"use strict";
const app = document.getElementById("app");
const heading = document.getElementById("heading");
const code = document.getElementById("code");
const lines = document.getElementById("lines");
const offline = document.getElementById("offline");
let drawn = "";

function paragraph(text, className) {
  const element = document.createElement("p");
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

function render(state) {
  document.title = state.heading;
  app.dataset.kind = state.kind;
  heading.textContent = state.heading;
  // Redraw the code only when it changed, so a new note does not make it flicker.
  const next = JSON.stringify([state.svg, state.image, state.code]);
  if (next !== drawn) {
    drawn = next;
    code.replaceChildren();
    if (state.svg) code.innerHTML = state.svg;
    else if (state.image) {
      const image = new Image();
      image.alt = "QR code";
      image.src = state.image;
      code.append(image);
    } else if (state.code) code.append(paragraph(state.code, "pairing"));
  }
  lines.replaceChildren(...state.lines.map((text) => paragraph(text)));
}

const initial = JSON.parse(document.getElementById("initial").textContent);
render(initial);
if (!initial.final) {
  const events = new EventSource("events");
  events.onopen = () => { offline.hidden = true; };
  events.onerror = () => { offline.hidden = false; };
  events.onmessage = (message) => {
    const state = JSON.parse(message.data);
    render(state);
    // Closing the stream tells the server this page has shown the final state.
    if (state.final) events.close();
  };
}
</script>
</body>
</html>
`;
}
