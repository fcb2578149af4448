// Verify a Lindungi webhook delivery (Node.js 18+, standard library only).
//
// As a library: `verify(secret, requestHeaders, rawBody)`. As a command, to try it:
//
//     LINDUNGI_WEBHOOK_SECRET=... node verify.mjs TIMESTAMP SIGNATURE < body
//     (exit 0: genuine and fresh, accept it; exit 1: refuse it)
//
// The secret is read from the environment, not the command line, where other users of the machine could see it.

import { createHmac, timingSafeEqual } from "node:crypto";

export const TOLERANCE_SECONDS = 300; // a delivery signed longer ago (a replay) or further ahead than this is refused

// True when `body` (a Buffer of the raw bytes, before any JSON parsing) was signed with `secret` within the window.
export function verify(secret, headers, body, now = Date.now() / 1000) {
  const header = (name) => {
    for (const [key, value] of Object.entries(headers)) {
      if (key.toLowerCase() === name) return String(value).trim(); // header names are case-insensitive
    }
    return "";
  };
  const timestamp = header("x-lindungi-timestamp");
  const signature = Buffer.from(header("x-lindungi-signature"));
  if (!/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const mac = createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
  const expected = Buffer.from(`v1=${mac}`);
  return expected.length === signature.length && timingSafeEqual(expected, signature);
}

// Run as a command (not when imported).
import { pathToFileURL } from "node:url";

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const received = { "X-Lindungi-Timestamp": process.argv[2], "X-Lindungi-Signature": process.argv[3] };
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const genuine = verify(process.env.LINDUNGI_WEBHOOK_SECRET, received, Buffer.concat(chunks));
  console.log(genuine ? "verified" : "refused");
  process.exit(genuine ? 0 : 1);
}
