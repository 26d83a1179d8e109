/** A storage node on S3 (or an S3-compatible endpoint) from a node spec. */
import { S3Client } from '@aws-sdk/client-s3';
import type { StorageNode } from '../../ports/storage-node.ts';
import { S3BlobStore } from './s3-blob-store.ts';

export interface S3NodeSpec {
  id: string;
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  weight?: number | undefined;
}

/** `wrap` sees the client first (the IAM test records its commands that way). */
export function s3Node(spec: S3NodeSpec, wrap: (c: S3Client) => S3Client = (c) => c): StorageNode {
  const client = wrap(
    new S3Client({
      region: spec.region,
      ...(spec.endpoint ? { endpoint: spec.endpoint, forcePathStyle: true } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
    }),
  );
  return {
    id: spec.id,
    kind: 's3',
    region: spec.region,
    weight: spec.weight ?? 1,
    store: new S3BlobStore(spec.id, client, spec.bucket),
    health: 'healthy',
    draining: false,
  };
}
