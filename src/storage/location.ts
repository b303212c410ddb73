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

/** The URI of a key below a location, as shown to users and written to outputs. */
export function uriOf(location: Location, key: string): string {
  return location.kind === 's3' ? `s3://${location.bucket}/${location.prefix}${key}` : path.join(location.dir, key);
}
