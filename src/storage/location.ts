/** Where data lives: an S3 prefix or a local folder. */
import path from 'node:path';

export type Location =
  | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string }
  | { readonly kind: 'local'; readonly dir: string };

/**
 * `s3://bucket/some/prefix` (a folder-like prefix: a trailing `/` is implied) or a local path
 * (`file://` URLs accepted).
 */
export function parseLocation(uri: string): Location {
  if (/^s3:\/\//i.test(uri)) {
    const rest = uri.slice(5);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    let prefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (!bucket) throw new Error(`"${uri}" has no bucket name`);
    if (prefix && !prefix.endsWith('/')) prefix += '/';
    return { kind: 's3', bucket, prefix };
  }
  if (/^file:\/\//i.test(uri)) return { kind: 'local', dir: path.resolve(decodeURIComponent(new URL(uri).pathname)) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new Error(`"${uri}": only s3:// URIs and local paths are supported`);
  return { kind: 'local', dir: path.resolve(uri) };
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Why a dataset or output URI cannot work, before anything is read or written: a typo'd scheme
 * (`s3:/b`, `s3:b`), an invalid bucket name, an unsupported scheme, or nothing at all.
 */
export function locationProblem(uri: string): string | undefined {
  if (uri.trim() === '') return 'is empty (expected s3://bucket/prefix or a local folder)';
  if (/^s3:(?!\/\/)/i.test(uri)) return `"${uri}" is not an S3 URI: write s3://bucket/prefix (two slashes)`;
  if (/[\r\n\0]/.test(uri)) return `"${JSON.stringify(uri).slice(1, -1)}" contains a line break or NUL`;
  let location: Location;
  try {
    location = parseLocation(uri);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (location.kind === 's3' && !BUCKET_NAME.test(location.bucket)) {
    return `"${location.bucket}" is not a valid S3 bucket name (3–63 lowercase letters, digits, dots and hyphens)`;
  }
  return undefined;
}

/** The URI of a key below a location, as shown to users and written to outputs. */
export function uriOf(location: Location, key: string): string {
  return location.kind === 's3' ? `s3://${location.bucket}/${location.prefix}${key}` : path.join(location.dir, key);
}
