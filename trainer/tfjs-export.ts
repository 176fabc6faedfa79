/**
 * A checkpoint's weights as a TensorFlow.js Layers model (what `tf.loadLayersModel` reads): model.json (the
 * topology and a weightsManifest naming one shard, weights.bin) and weights.bin (float32 little-endian values in
 * manifest order). Runs in a trainer worker (worker.ts task "exportTfjs"), never on a request thread.
 *
 * Invariants:
 * - The weights are the checkpoint's exactly: the file's SHA-256 is checked first, then the model is built from the
 *   run's layer list (the parent's for a fine-tune, like buildForJob) with the input shape, head width and
 *   vocabulary the weights file itself records, the values loaded by name (a missing or misshaped weight is an
 *   error naming it), and read back by tfjs' own serializer.
 * - The topology uses only stock TF.js layer classes: our ScatterEmbedding (same weight, same forward maths as
 *   tf.layers.embedding; it differs only in its gradient) is written as "Embedding", so a plain TF.js install loads it.
 * - Same weights and layers give the same bytes (no timestamps in either file).
 */
import * as tf from "@tensorflow/tfjs";
import type { LayerSpec, TrainingConfig } from "@/contracts/training-config";
import { deserializeWeights, loadWeightsInto, readWeightsHeader, weightsSha256 } from "./checkpoint";
import { buildModel, HEAD_LAYER_NAME } from "./model";

export type TfjsExportInput = {
  layers: LayerSpec[];
  task: TrainingConfig["data"]["task"];
  seed: number;
  weights: Uint8Array;
  sha256: string;
};
export type TfjsExport = { modelJson: string; weightsBin: Uint8Array };

export const TFJS_WEIGHTS_FILE = "weights.bin";

type TopologyLayer = { class_name: string; config: Record<string, unknown> };

/** ScatterEmbedding → the stock Embedding layer (same name, sizes and input shape). */
function stockLayers(topology: unknown): void {
  const layers = ((topology as { config?: { layers?: TopologyLayer[] } }).config?.layers ?? []) as TopologyLayer[];
  for (const layer of layers) {
    if (layer.class_name !== "RunledgerScatterEmbedding") continue;
    const c = layer.config;
    layer.class_name = "Embedding";
    layer.config = {
      name: c.name,
      trainable: c.trainable,
      dtype: c.dtype,
      ...(c.batch_input_shape ? { batch_input_shape: c.batch_input_shape } : {}),
      input_dim: c.input_dim,
      output_dim: c.output_dim,
      embeddings_initializer: { class_name: "RandomUniform", config: { minval: -0.05, maxval: 0.05, seed: c.seed ?? null } },
      mask_zero: false,
    };
  }
}

export async function exportTfjs(input: TfjsExportInput): Promise<TfjsExport> {
  const actual = weightsSha256(input.weights);
  if (actual !== input.sha256)
    throw new Error(`the checkpoint's weights hash to ${actual}, not the recorded ${input.sha256}; refusing to export them`);
  await tf.setBackend("cpu");
  const header = readWeightsHeader(input.weights);
  const head = header.weights.find((w) => w.name === `${HEAD_LAYER_NAME}/kernel`);
  if (!head) throw new Error("the checkpoint has no head layer");
  const embedding = header.weights.find((w) => w.name.endsWith("/embeddings"));
  const model = buildModel({
    layers: input.layers,
    featureShape: header.inputShape,
    task: input.task,
    outputs: head.shape.at(-1)!,
    seed: input.seed,
    ...(embedding ? { vocabularySize: embedding.shape[0] } : {}),
  });
  try {
    loadWeightsInto(model, deserializeWeights(input.weights));
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: "JSON" } };
      }),
    );
    if (!saved?.weightData || !saved.weightSpecs) throw new Error("TensorFlow.js returned no weights");
    stockLayers(saved.modelTopology);
    const data = Array.isArray(saved.weightData) ? tf.io.concatenateArrayBuffers(saved.weightData) : saved.weightData;
    const modelJson = {
      format: "layers-model",
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
      convertedBy: `Runledger (checkpoint weights ${input.sha256})`,
      modelTopology: saved.modelTopology,
      weightsManifest: [{ paths: [TFJS_WEIGHTS_FILE], weights: saved.weightSpecs }],
    };
    return { modelJson: JSON.stringify(modelJson, null, 1), weightsBin: new Uint8Array(data) };
  } finally {
    model.dispose();
  }
}
