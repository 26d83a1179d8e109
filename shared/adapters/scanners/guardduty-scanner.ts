/**
 * GuardDuty Malware Protection for S3 behind the Scanner port: an object scanner. GuardDuty scans
 * every object uploaded to a bucket that has a Malware Protection plan, by itself, and (with the
 * plan's tagging on) tags the object `GuardDutyMalwareScanStatus` with the result ("Monitoring S3
 * object scans with GuardDuty managed tags",
 * https://docs.aws.amazon.com/guardduty/latest/ug/monitor-enable-s3-object-tagging-malware-protection.html).
 * So this adapter is fed no bytes: `finish()` reads that tag (GetObjectTagging) on the node's bucket.
 *
 * The tag's values ("S3 object potential scan status and result status",
 * https://docs.aws.amazon.com/guardduty/latest/ug/monitoring-malware-protection-s3-scans-gdu.html):
 * - NO_THREATS_FOUND: clean. THREATS_FOUND: infected.
 * - No tag yet: GuardDuty is still at it (seconds, minutes for big objects). `finish()` throws, the
 *   version stays `scanning` and a later rescan asks again.
 * - UNSUPPORTED, ACCESS_DENIED and FAILED are no verdict, and never clean. Each is logged as an error
 *   naming the object and what an operator can do.
 *   - UNSUPPORTED (a password-protected file, an object over GuardDuty's size quota, an unsupported
 *     S3 feature) will not change: the version is quarantined for good (`infected`, signature
 *     `GuardDuty: UNSUPPORTED (not scanned)`). Left `scanning`, every rescan would ask about it
 *     again, and the rescan takes the oldest quarantined versions first, a batch at a time, so
 *     enough of them would keep newer uploads from ever being rescanned.
 *   - ACCESS_DENIED (the plan's role may not read the object) and FAILED (GuardDuty's internal
 *     error) can be put right: `finish()` throws, the version stays `scanning` (quarantined), and
 *     once the role is fixed an on-demand scan (SendObjectMalwareScan, which tags the object anew)
 *     settles it at the next rescan.
 *   docs/deploy.md ("Malware scanning") says the same for operators.
 */
import { GetObjectTaggingCommand, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import { DomainError, errors, UnavailableError } from '../../domain/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Scanner, ScanResult, ScanSession, ScanTarget } from '../../ports/scanner.ts';

/** The tag GuardDuty writes on each object it scanned. */
export const SCAN_STATUS_TAG = 'GuardDutyMalwareScanStatus';

/** What GuardDuty's UNSUPPORTED means for the version, and what its owner can do. */
const UNSUPPORTED =
  'GuardDuty does not scan this object (password-protected, over its object size quota, or an unsupported S3 feature): it is quarantined for good; the owner can delete it or upload a version GuardDuty can scan';

/** The scan results that GuardDuty may yet turn into a verdict, with what an operator can do. */
const NO_VERDICT_YET: Record<string, string> = {
  ACCESS_DENIED:
    "GuardDuty's role may not read this object: fix the Malware Protection plan's role (or the key policy), then scan it again on demand (aws guardduty send-object-malware-scan)",
  FAILED:
    'GuardDuty failed to scan this object (an internal error): scan it again on demand (aws guardduty send-object-malware-scan)',
};

/** Where a storage node's objects are: the client that reaches its bucket, and the bucket. */
export interface S3Location {
  client: S3Client;
  bucket: string;
}

/** A node's S3 location, or undefined for a node that is no S3 bucket. */
export type S3LocationResolver = (nodeId: string) => S3Location | undefined;

export class GuardDutyScanner implements Scanner {
  readonly name = 'guardduty';
  readonly needsBytes = false;
  private readonly locate: S3LocationResolver;
  private readonly log: Logger | undefined;

  constructor(locate: S3LocationResolver, log?: Logger) {
    this.locate = locate;
    this.log = log;
  }

  start(target: ScanTarget): ScanSession {
    return {
      // GuardDuty reads the stored object itself.
      update() {},
      finish: () => this.verdict(target),
    };
  }

  private async verdict({ nodeId, key }: ScanTarget): Promise<ScanResult> {
    const where = this.locate(nodeId);
    if (!where)
      throw new UnavailableError(
        'dependency-unavailable',
        `storage node ${nodeId} is not an S3 bucket, so GuardDuty cannot have scanned ${key}`,
      );
    const status = await this.scanStatus(nodeId, where, key);
    if (status === 'NO_THREATS_FOUND') return { verdict: 'clean' };
    if (status === 'THREATS_FOUND') return { verdict: 'infected', signature: 'GuardDuty' };
    if (status === undefined)
      throw new UnavailableError(
        'dependency-unavailable',
        `GuardDuty has not tagged s3://${where.bucket}/${key} yet (still scanning)`,
      );
    const fields = { nodeId, bucket: where.bucket, key, status };
    if (status === 'UNSUPPORTED') {
      this.log?.error('GuardDuty cannot scan an object; its version is quarantined for good', {
        ...fields,
        action: UNSUPPORTED,
      });
      return { verdict: 'infected', signature: 'GuardDuty: UNSUPPORTED (not scanned)' };
    }
    const action =
      NO_VERDICT_YET[status] ?? `an undocumented ${SCAN_STATUS_TAG} value: check the object by hand`;
    this.log?.error('GuardDuty gave no verdict; the version stays quarantined', { ...fields, action });
    throw new UnavailableError(
      'dependency-unavailable',
      `GuardDuty gave no verdict on s3://${where.bucket}/${key} (${status}): it stays quarantined`,
    );
  }

  /** The object's scan-status tag; undefined while it has none. SDK errors become domain errors. */
  private async scanStatus(nodeId: string, where: S3Location, key: string): Promise<string | undefined> {
    try {
      const res = await where.client.send(new GetObjectTaggingCommand({ Bucket: where.bucket, Key: key }));
      return res.TagSet?.find((t) => t.Key === SCAN_STATUS_TAG)?.Value;
    } catch (err) {
      if (err instanceof DomainError) throw err;
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode ?? 0;
      if (err instanceof NoSuchKey || e.name === 'NoSuchBucket' || status === 404)
        throw errors.notFound('object', err);
      if (status === 403)
        throw new UnavailableError(
          'dependency-unavailable',
          `reading the tags of s3://${where.bucket}/${key} was refused: the function needs s3:GetObjectTagging on that bucket`,
          { cause: err },
        );
      throw errors.unavailable(`storage node ${nodeId}`, undefined, err);
    }
  }
}
