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

/**
 * Which S3 nodes can copy between them inside S3 (`S3BlobStore.copyScope`): the clients of one
 * process share the default credentials, so what decides is the service they talk to: one custom
 * endpoint, or AWS in one partition (CopyObject crosses regions, not partitions).
 */
export function s3CopyScope(region: string, endpoint: string | undefined): string {
  if (endpoint) return `endpoint ${endpoint}`;
  const partition = PARTITIONS.find(([prefix]) => region.startsWith(prefix))?.[1] ?? 'aws';
  return `partition ${partition}`;
}

/** Region prefixes of the partitions other than `aws`, most specific first. */
const PARTITIONS: readonly (readonly [string, string])[] = [
  ['cn-', 'aws-cn'],
  ['us-gov-', 'aws-us-gov'],
  ['us-isob-', 'aws-iso-b'],
  ['us-isof-', 'aws-iso-f'],
  ['us-iso-', 'aws-iso'],
  ['eu-isoe-', 'aws-iso-e'],
];

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
    store: new S3BlobStore(spec.id, client, spec.bucket, {
      // Without an endpoint of its own the client takes the environment's, as the SDK does.
      copyScope: s3CopyScope(
        spec.region,
        spec.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
      ),
    }),
    health: 'healthy',
    draining: false,
  };
}
