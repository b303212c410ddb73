#!/usr/bin/env node
// The AWS SDK prints an 8-line warning on every client under Node < 22 (its releases after
// January 2027 need Node 22). The CLI silences it and says so in one line where AWS is used.
if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED === undefined && Number(process.versions.node.split('.')[0]) < 22) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  process.env.CLARIFY_IMAGES_NODE_NOTICE = '1';
}
const { main } = await import('../dist/src/cli.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
