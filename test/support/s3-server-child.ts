/**
 * Runs s3rver in its own process. It must be started with --openssl-legacy-provider: s3rver
 * encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its legacy provider.
 * Prints {"port": N} on stdout once listening.
 */
import S3rver from 's3rver';

const directory = process.argv[2];
if (!directory) throw new Error('usage: s3-server-child DIRECTORY');
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
const { port } = (await server.run()) as { port: number };
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
