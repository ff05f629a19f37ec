// Drive a mediatasks server with the official Livepeer TypeScript SDK (livepeer 3.5.0, zod 3).
//
// Usage: node flow.mjs <JSON job>, where the job names the server (`api`, ending in /api), its
// `key`, and the loopback services the flows use (a file server with the sources, a webhook
// receiver, an S3 bucket, an export target).  Prints one JSON document: every SDK call with
// whether it succeeded (and its error when not), and what the calls saw, for the test to check.
import { Livepeer } from "livepeer";
import { ErrorT } from "livepeer/models/errors/error.js";
import { SDKError } from "livepeer/models/errors/sdkerror.js";

const job = JSON.parse(process.argv[2]);
const lp = new Livepeer({ apiKey: job.key, serverURL: job.api });
const calls = [];
const seen = {};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One SDK call, recorded: `expect` is the HTTP status of an SDKError the call must raise.
async function call(name, fn, expect) {
  try {
    const result = await fn();
    calls.push({ name, ok: expect === undefined, error: expect ? `no error, ${expect} expected` : undefined });
    return result;
  } catch (error) {
    // ErrorT is what the SDK raises for the one error status the spec spells out (playback's 404).
    const status = error instanceof SDKError ? error.statusCode : error instanceof ErrorT ? 404 : undefined;
    const ok = expect !== undefined && status === expect;
    calls.push({ name, ok, error: ok ? undefined : `${error.name}: ${error.message}`.slice(0, 2000) });
    return undefined;
  }
}

// A raw request for what the SDK has no call for (exports, cancel, the direct upload).
async function raw(method, path, body, headers = {}) {
  const response = await fetch(path.startsWith("http") ? path : `${job.api}${path}`, {
    method,
    headers: { Authorization: `Bearer ${job.key}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

const phasesOf = {}; // task type -> phases seen through task.get

async function watch(taskId, label, until = ["completed", "failed", "cancelled"]) {
  const deadline = Date.now() + 120_000;
  let task;
  while (Date.now() < deadline) {
    const got = await call(`task.get (${label})`, () => lp.task.get(taskId));
    task = got?.task;
    if (!task) return undefined;
    (phasesOf[task.type] ??= new Set()).add(task.status.phase);
    if (until.includes(task.status.phase)) return task;
    await sleep(100);
  }
  return task;
}

// -- assets: import by URL, from IPFS, upload ------------------------------------------------------
const created = await call("asset.createViaUrl", () =>
  lp.asset.createViaUrl({ name: "ts import", url: job.source, staticMp4: true, creatorId: "ts-user" }),
);
const imported = created?.twoHundredAndOneApplicationJsonData;
seen.import_status = created?.statusCode;
const importTask = await watch(imported.task.id, "upload");
seen.import_phase = importTask?.status.phase;
seen.import_asset_spec = importTask?.output?.upload?.assetSpec?.id === imported.asset.id;

const fromIpfs = await call("asset.createViaUrl (ipfs://)", () =>
  lp.asset.createViaUrl({ name: "from ipfs", url: job.ipfs_source, storage: { ipfs: { spec: { nftMetadataTemplate: "file" } } } }),
);
const ipfsImport = fromIpfs?.twoHundredAndOneApplicationJsonData;
seen.ipfs_source = ipfsImport?.asset.source;
seen.ipfs_import_phase = (await watch(ipfsImport.task.id, "upload from ipfs"))?.status.phase;

const request = await call("asset.create", () => lp.asset.create({ name: "ts upload" }));
const upload = request?.data;
seen.pending_phase = (await call("task.get (pending upload)", () => lp.task.get(upload.task.id)))?.task?.status.phase;
(phasesOf.upload ??= new Set()).add(seen.pending_phase);
const put = await fetch(upload.url, { method: "PUT", body: await (await fetch(job.source)).arrayBuffer() });
seen.put_status = put.status;
seen.upload_phase = (await watch(upload.task.id, "upload"))?.status.phase;

// A failed and a cancelled task.
const broken = await call("asset.createViaUrl (missing source)", () =>
  lp.asset.createViaUrl({ name: "broken", url: job.missing_source }),
);
seen.failed_phase = (await watch(broken.twoHundredAndOneApplicationJsonData.task.id, "failed upload"))?.status.phase;
const abandoned = await call("asset.create (to cancel)", () => lp.asset.create({ name: "abandoned" }));
seen.cancel_status = (await raw("POST", `/task/${abandoned.data.task.id}/cancel`)).status;
seen.cancelled_phase = (await watch(abandoned.data.task.id, "cancelled upload"))?.status.phase;

// -- reading and changing assets -----------------------------------------------------------------
const asset = (await call("asset.get", () => lp.asset.get(imported.asset.id)))?.asset;
seen.asset_phase = asset?.status.phase;
seen.creator = asset?.creatorId;
seen.video_spec = asset?.videoSpec?.duration;
const updated = (await call("asset.update", () =>
  lp.asset.update({ name: "renamed", creatorId: { type: "unverified", value: "c2" }, playbackPolicy: { type: "public" } }, imported.asset.id),
))?.asset;
seen.updated = { name: updated?.name, creator: updated?.creatorId?.value };
await call("asset.update (empty name)", () => lp.asset.update({ name: "" }, imported.asset.id));

// creatorId without type: refused at creation, so no asset breaks the project's list.
seen.bad_creator_status = (await raw("POST", "/asset/upload/url", { name: "x", url: job.source, creatorId: { value: "x" } })).status;
const all = (await call("asset.getAll", () => lp.asset.getAll()))?.data ?? [];
seen.assets_listed = all.map((a) => a.id).includes(imported.asset.id);

// -- transcode to S3, clip -----------------------------------------------------------------------
const transcoded = await call("transcode.create", () =>
  lp.transcode.create({
    input: { url: job.source },
    storage: { type: "s3", endpoint: job.s3.endpoint, bucket: job.s3.bucket, credentials: { accessKeyId: job.s3.key, secretAccessKey: job.s3.secret } },
    outputs: { hls: { path: "/ts/hls" }, mp4: { path: "/ts/mp4" } },
  }),
);
seen.transcode_phase = (await watch(transcoded.task.id, "transcode-file"))?.status.phase;

const clipped = await call("stream.createClip", () =>
  lp.stream.createClip({ playbackId: imported.asset.playbackId, startTime: 500, endTime: 1500, name: "ts clip" }),
);
seen.clip_phase = (await watch(clipped.data.task.id, "clip"))?.status.phase;
const clip = (await call("asset.get (clip)", () => lp.asset.get(clipped.data.asset.id)))?.asset;
seen.clip = { duration: clip?.videoSpec?.duration, size: clip?.size, hash: clip?.hash?.[0]?.hash, source: clip?.source?.type };
const tail = await call("stream.createClip (no endTime)", () =>
  lp.stream.createClip({ playbackId: imported.asset.playbackId, startTime: 1000 }),
);
seen.tail_phase = (await watch(tail.data.task.id, "clip to the end"))?.status.phase;

// -- exports: a custom URL, IPFS (with NFT metadata), a document ---------------------------------
const custom = await raw("POST", `/asset/${imported.asset.id}/export`, { custom: { url: job.target, headers: { Authorization: "Bearer t" } } });
seen.export_custom_phase = (await watch(custom.body.task.id, "export to a URL"))?.status.phase;
const stored = (await call("asset.update (storage.ipfs)", () =>
  lp.asset.update({ storage: { ipfs: { spec: { nftMetadataTemplate: "player", nftMetadata: { edition: 1 } } } } }, imported.asset.id),
))?.asset;
const ipfsTask = await watch(stored.storage.status.tasks.pending, "export to IPFS");
seen.export_ipfs = ipfsTask?.output?.export?.ipfs;
const data = await raw("POST", "/data/export", { content: { hello: "world" } });
seen.export_data = (await watch(data.body.task.id, "export-data"))?.output?.exportData?.ipfs;
const ipfsAsset = (await call("asset.get (stored on IPFS)", () => lp.asset.get(ipfsImport.asset.id)))?.asset;
seen.stored_at_import = ipfsAsset?.storage;

// -- tasks ---------------------------------------------------------------------------------------
const tasks = (await call("task.getAll", () => lp.task.getAll()))?.data ?? [];
seen.task_types = [...new Set(tasks.map((t) => t.type))].sort();
for (const task of tasks) await call(`task.get (${task.type}, ${task.status.phase})`, () => lp.task.get(task.id));
seen.phases = Object.fromEntries(Object.entries(phasesOf).map(([type, set]) => [type, [...set].sort()]));

// -- webhooks ------------------------------------------------------------------------------------
const hook = (await call("webhook.create", () =>
  lp.webhook.create({ name: "ts hook", url: job.receiver, events: ["asset.created"], sharedSecret: "ts-secret" }),
))?.webhook;
seen.hook_secret_shown = JSON.stringify(hook ?? {}).includes("ts-secret");
await call("webhook.create (no events)", () => lp.webhook.create({ name: "quiet", url: job.receiver }));
await call("webhook.get", () => lp.webhook.get(hook.id));
seen.hooks = ((await call("webhook.getAll", () => lp.webhook.getAll()))?.data ?? []).length;
await call("webhook.update", () => lp.webhook.update({ name: "ts hook 2", url: job.receiver, events: ["asset.created", "task.spawned"] }, hook.id));
await call("asset.create (an event)", () => lp.asset.create({ name: "for the hook" }));
let logs = [];
for (let i = 0; i < 100 && logs.length === 0; i++) {
  logs = (await call("webhook.getLogs", () => lp.webhook.getLogs(hook.id)))?.data ?? [];
  if (!logs.length) await sleep(100);
}
seen.log_success = logs.map((l) => l.success);
await call("webhook.getLog", () => lp.webhook.getLog(hook.id, logs[0].id));
await call("webhook.resendLog", () => lp.webhook.resendLog(hook.id, logs[0].id));
await call("webhook.delete", () => lp.webhook.delete(hook.id));

// -- playback and access control -------------------------------------------------------------------
seen.playback = (await call("playback.get", () => lp.playback.get(imported.asset.playbackId), job.playback ? undefined : 404))?.playbackInfo;
if (job.signing_keys) {
  const key = (await call("accessControl.create", () => lp.accessControl.create()))?.signingKey;
  await call("accessControl.getAll", () => lp.accessControl.getAll());
  await call("accessControl.get", () => lp.accessControl.get(key.id));
  await call("accessControl.update", () => lp.accessControl.update({ disabled: true }, key.id));
  await call("accessControl.delete", () => lp.accessControl.delete(key.id));
}

// -- unknown ids -----------------------------------------------------------------------------------
await call("task.get (unknown)", () => lp.task.get("no-such-task"), 404);
await call("asset.get (unknown)", () => lp.asset.get("no-such-asset"), 404);
await call("asset.update (unknown)", () => lp.asset.update({ name: "x" }, "no-such-asset"), 404);
await call("asset.delete (unknown)", () => lp.asset.delete("no-such-asset"), 404);
await call("webhook.get (unknown)", () => lp.webhook.get("no-such-hook"), 404);
await call("webhook.getLogs (unknown)", () => lp.webhook.getLogs("no-such-hook"), 404);
await call("playback.get (unknown)", () => lp.playback.get("no-such-playback"), 404);

await call("asset.delete", () => lp.asset.delete(upload.asset.id));
await call("asset.get (deleted)", () => lp.asset.get(upload.asset.id), 404);

console.log(JSON.stringify({ calls, seen }));
