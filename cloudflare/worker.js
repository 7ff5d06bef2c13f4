// mailhook Cloudflare Email Worker: hands every message Email Routing gives it to mailhook.
//
// Cloudflare calls email() once per recipient. The raw message goes to mailhook as a signed
// POST (protocol: README.md beside this file). What the sender's MTA is told depends on the answer:
//   2xx                 accepted (mailhook answers only after its spool commit)
//   422, or 413 whose   refused for good: message.setReject(reason), a permanent SMTP error
//   body says permanent
//   anything else       401 (secrets differ), 429, 5xx, a proxy's error page, no connection at
//                       all: throw, and Cloudflare gives the sender a temporary error so it retries
// setReject is never used for a failure the operator can fix: that would bounce good mail.

const ENDPOINT = "/api/v1/inbound/cloudflare";
const TIMEOUT_MS = 60_000;
const encoder = new TextEncoder();

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** "v1=" + hex HMAC-SHA256(secret, `${timestamp}\n${from}\n${to}\n` + body), values as sent. */
export async function sign(secret, timestamp, envelopeFrom, envelopeTo, body) {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const head = encoder.encode(`${timestamp}\n${envelopeFrom}\n${envelopeTo}\n`);
  const payload = new Uint8Array(head.length + body.length);
  payload.set(head, 0);
  payload.set(body, head.length);
  return "v1=" + hex(await crypto.subtle.sign("HMAC", key, payload));
}

/** Percent-encoding keeps header values ASCII whatever the address (RFC 6531 allows UTF-8). */
function headerValue(address) {
  return encodeURIComponent(address ?? "");
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

/** Deliver one message; resolves when mailhook has it or it was rejected for good. */
export async function forward(message, env, fetcher = fetch) {
  if (!env.MAILHOOK_URL || !env.MAILHOOK_SECRET) {
    throw new Error("mailhook worker is not configured: set MAILHOOK_URL and the MAILHOOK_SECRET secret");
  }
  // message.raw is a one-shot ReadableStream: read it whole, once.
  const body = new Uint8Array(await new Response(message.raw).arrayBuffer());
  const timestamp = Math.floor(Date.now() / 1000).toString();
  const envelopeFrom = headerValue(message.from);
  const envelopeTo = headerValue(message.to);
  const url = env.MAILHOOK_URL.replace(/\/+$/, "") + ENDPOINT;
  let response;
  try {
    response = await fetcher(url, {
      method: "POST",
      headers: {
        "Content-Type": "message/rfc822",
        "X-Mailhook-Timestamp": timestamp,
        "X-Mailhook-Envelope-From": envelopeFrom,
        "X-Mailhook-Envelope-To": envelopeTo,
        "X-Mailhook-Signature": await sign(env.MAILHOOK_SECRET, timestamp, envelopeFrom, envelopeTo, body),
      },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new Error(`mailhook unreachable, temporary failure: ${err}`);
  }
  if (response.ok) {
    await response.body?.cancel();
    return { status: response.status, rejected: null };
  }
  const answer = await readJson(response);
  if (response.status === 422 || (response.status === 413 && answer.permanent === true)) {
    const reason = typeof answer.reason === "string" && answer.reason ? answer.reason : "Message rejected";
    // Synchronous in production; a promise under wrangler dev (an RPC stub), so await it.
    await message.setReject(reason);
    return { status: response.status, rejected: reason };
  }
  throw new Error(`mailhook answered ${response.status} ${answer.error ?? ""}, temporary failure`.trim());
}

export default {
  async email(message, env, ctx) {
    await forward(message, env);
  },
};
