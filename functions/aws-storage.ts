/**
 * S3 as the aws profile's storage: the stack's bucket is the home node, and nodes added at run time
 * are buckets too (another region, or an S3-compatible endpoint). Imported by the entry of every
 * function that touches stored bytes (all but auth), so the S3 client stays out of the others. With
 * STRATUS_SCANNER=guardduty the scanner asks each node's bucket, with that node's client, for the
 * tag GuardDuty Malware Protection put on the object.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../shared/adapters/s3/s3-blob-store.ts';
import { s3CopyScope, s3Node } from '../shared/adapters/s3/s3-node.ts';
import { GuardDutyScanner } from '../shared/adapters/scanners/guardduty-scanner.ts';
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
      {
        copyScope: s3CopyScope(
          config.AWS_REGION,
          process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
        ),
      },
    ),
  async node(spec, sdk) {
    if (spec.kind !== 's3') throw errors.validation('in AWS, storage nodes are S3 buckets');
    return s3Node(spec, sdk);
  },
  guardDutyScanner: (nodes, log) =>
    new GuardDutyScanner((nodeId) => {
      // Looked up per scan: nodes added at run time are S3 buckets too.
      const store = nodes.store(nodeId);
      return store instanceof S3BlobStore ? store.location : undefined;
    }, log),
};
