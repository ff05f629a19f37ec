// Prints the CID that `ipfs add --cid-version=1` gives each file named on the command line, one
// per line, computed by the reference JavaScript UnixFS importer (an implementation independent
// of mediatasks.ipfs): fixed-size chunks (256 KiB unless --chunk-size=N), raw leaves, a balanced
// DAG of at most 174 links per node (unless --max-links=N), CIDv1 with sha2-256, base32.
import { createReadStream } from "node:fs";
import { importByteStream } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";

let chunkSize = 262144;
let maxLinks = 174;
const paths = [];
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith("--chunk-size=")) chunkSize = Number(arg.split("=")[1]);
  else if (arg.startsWith("--max-links=")) maxLinks = Number(arg.split("=")[1]);
  else paths.push(arg);
}

// Only the CIDs are wanted: the blocks are thrown away as they come.
const discard = { put: async (cid) => cid };

for (const path of paths) {
  const entry = await importByteStream(createReadStream(path), discard, {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode: maxLinks }),
  });
  process.stdout.write(`${entry.cid.toString()}\n`);
}
