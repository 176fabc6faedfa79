/**
 * Browser side of the streaming CSV upload: POSTs the File as the raw request body to /api/datasets/upload (the
 * browser streams it from disk; nothing is read into page memory) with the settings in the query string, and
 * reports the bytes sent. XMLHttpRequest rather than fetch because only it reports upload progress.
 */
export type UploadSettings = {
  name: string;
  labelColumn?: string;
  licence?: string;
  origin?: string;
  kind?: "tabular" | "image" | "text";
  imageShape?: [number, number, number];
  textColumn?: string;
};
export type UploadedDataset = { id: number; name: string; rowCount: number; sha256: string; byteSize: number };

export class UploadFailed extends Error {}

export function newUploadId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function uploadCsvFile(
  file: File,
  settings: UploadSettings,
  uploadId: string,
  onSent: (sent: number, total: number) => void,
  onSentAll: () => void,
): Promise<UploadedDataset> {
  const params = new URLSearchParams({ uploadId });
  for (const [k, v] of Object.entries(settings)) if (v !== undefined && v !== "") params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/datasets/upload?${params}`);
    xhr.setRequestHeader("content-type", "text/csv");
    xhr.upload.onprogress = (e) => onSent(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.upload.onload = () => onSentAll();
    xhr.onerror = () => reject(new UploadFailed("the upload did not reach the server (network error)"));
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 200 && body) return resolve(body as UploadedDataset);
      const message = (body as { error?: { message?: string } } | null)?.error?.message;
      reject(new UploadFailed(message ?? `the server answered HTTP ${xhr.status}`));
    };
    xhr.send(file);
  });
}
