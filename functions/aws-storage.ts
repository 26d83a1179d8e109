/**
 * S3 as the aws profile's storage: the stack's bucket is the home node, and nodes added at run time
 * are buckets too (another region, or an S3-compatible endpoint). Imported by the entry of every
 * function that touches stored bytes (all but auth), so the S3 client stays out of the others.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../shared/adapters/s3/s3-blob-store.ts';
import { s3Node } from '../shared/adapters/s3/s3-node.ts';
import { errors } from '../shared/domain/errors.ts';
import type { AwsStorage } from './aws-container.ts';

export const s3Storage: AwsStorage = {
  home: (config, sdk) =>
    new S3BlobStore(
      `s3-${config.AWS_REGION}`,
      sdk(
        new S3Client({
          region: config.AWS_REGION,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          // A custom endpoint (an emulator, an S3-compatible store) has no per-bucket DNS names.
          forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
        }),
      ),
      config.STRATUS_BUCKET,
    ),
  async node(spec, sdk) {
    if (spec.kind !== 's3') throw errors.validation('in AWS, storage nodes are S3 buckets');
    return s3Node(spec, sdk);
  },
};
