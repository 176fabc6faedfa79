/**
 * Chooses the TensorFlow.js backend a run trains on, and says why in words a user can read
 * (the reason is recorded with the run, next to the library versions).
 *
 * Order for "auto": native TensorFlow (tfjs-node, an optional dependency that may be absent)
 * → WebAssembly → plain JavaScript cpu. The wasm backend (tfjs 4.22) has no Conv2DBackpropFilter
 * kernel, so a model with conv layers trains on cpu instead. (It also lacks UnsortedSegmentSum, the
 * stock embedding gradient; model.ts's embedding layer uses a scatter-add gradient that wasm has.) Backends are global to the process (or worker
 * thread): call this before building the model.
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths, version_wasm } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import path from "node:path";
import type { BackendName } from "./types";

export type BackendChoice = { name: BackendName; reason: string; versions: { tfjs: string; node: string; backendVersion?: string } };

// Resolve packages from the repo root: this file may run under tsx (CJS), Vitest (ESM) or a bundler.
const requireFromRoot = createRequire(path.join(process.cwd(), "package.json"));

let wasmPathsSet = false;

function tryLoadTfjsNode(): { ok: true; version: string } | { ok: false; why: string } {
  try {
    const tfnode = requireFromRoot("@tensorflow/tfjs-node") as { version?: { "tfjs-node"?: string } };
    return { ok: true, version: tfnode.version?.["tfjs-node"] ?? "unknown" };
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND";
    return {
      ok: false,
      why: missing ? "tfjs-node is not installed" : `tfjs-node failed to load (${(error as Error).message.split("\n")[0]})`,
    };
  }
}

/**
 * tfjs's cpu backend prints a "install tfjs-node to speed things up" banner on its first tensor write, once per
 * process or worker thread, so every training and estimate worker repeated it in the server log. The choice and its
 * reason are already recorded with the run (BackendChoice), so the banner says nothing new. It is silenced by marking
 * that one backend instance as already used (a field of MathBackendCPU in the pinned tfjs 4.22), not by tfjs's PROD
 * flag, which would also hide tfjs's other warnings.
 */
function silenceCpuBanner(): void {
  const backend = tf.backend() as unknown as { firstUse?: unknown };
  if (typeof backend.firstUse === "boolean") backend.firstUse = false;
}

async function activate(name: BackendName): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    const active = ok && tf.getBackend() === name;
    if (active && name === "cpu") silenceCpuBanner();
    return active;
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<{ ok: true } | { ok: false; why: string }> {
  try {
    if (!wasmPathsSet) {
      const dist = path.join(path.dirname(requireFromRoot.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + path.sep;
      setWasmPaths(dist);
      wasmPathsSet = true;
    }
    return (await activate("wasm")) ? { ok: true } : { ok: false, why: "the WebAssembly backend failed to start" };
  } catch (error) {
    return { ok: false, why: `the WebAssembly backend failed to start (${(error as Error).message})` };
  }
}

function versionsFor(name: BackendName, nodeVersion?: string): BackendChoice["versions"] {
  const backendVersion = name === "wasm" ? version_wasm : name === "tensorflow" ? nodeVersion : tf.version_core;
  return { tfjs: tf.version_core, node: process.version, ...(backendVersion ? { backendVersion } : {}) };
}

export type BackendNeeds = {
  /** The model has conv2d layers (wasm cannot compute their filter gradients). */
  needsConvGradients: boolean;
};

export async function selectBackend(preferred: BackendName | "auto", opts: BackendNeeds): Promise<BackendChoice> {
  const notes: string[] = [];
  if (preferred === "auto" || preferred === "tensorflow") {
    const native = tryLoadTfjsNode();
    if (native.ok && (await activate("tensorflow"))) {
      return {
        name: "tensorflow",
        reason: preferred === "auto" ? "native TensorFlow (tfjs-node) is installed" : "tensorflow was requested",
        versions: versionsFor("tensorflow", native.version),
      };
    }
    notes.push(native.ok ? "tfjs-node is installed but its backend failed to start" : native.why);
    if (preferred === "tensorflow") notes[0] = `tensorflow was requested but ${notes[0]}`;
  }
  if (preferred !== "cpu") {
    if (opts.needsConvGradients) {
      notes.push("wasm lacks Conv2DBackpropFilter: conv layers train on cpu");
    } else {
      const wasm = await tryWasm();
      if (wasm.ok) {
        const reason = preferred === "wasm" ? "wasm was requested" : [...notes, "using WebAssembly"].join("; ");
        return { name: "wasm", reason, versions: versionsFor("wasm") };
      }
      notes.push(`${wasm.why}; using cpu`);
    }
  } else {
    notes.push("cpu was requested");
  }
  if (!(await activate("cpu"))) throw new Error("no TensorFlow.js backend could start (not even cpu)");
  return { name: "cpu", reason: notes.join("; "), versions: versionsFor("cpu") };
}
