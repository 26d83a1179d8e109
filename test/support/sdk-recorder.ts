/**
 * Records the AWS SDK commands a composition sends (and presigns: presigning runs a command through
 * the same middleware stack), and maps each to the IAM action and resource it needs. The table
 * below is AWS's "actions defined by" pages for S3, DynamoDB and Cognito; a command missing from
 * it fails the IAM test, so a new SDK call cannot slip past review.
 */
import type { AwsSdkClient } from '../../functions/aws-container.ts';

export interface SentCommand {
  /** Function group whose composition sent it. */
  group: string;
  /** `S3`, `DynamoDB`, `CognitoIdentityProvider`. */
  service: string;
  /** The operation, e.g. `ListParts`. */
  command: string;
  input: Record<string, unknown>;
}

/** One IAM permission a command needs: action and the resource it is evaluated on. */
export interface Needed {
  action: string;
  resource: Resource;
}

export type Resource =
  | { kind: 'bucket'; bucket: string }
  | { kind: 'object'; bucket: string; key: string }
  | { kind: 'table'; table: string }
  | { kind: 'userPool'; userPoolId: string };

type Rule = (input: Record<string, unknown>) => Needed[];

const str = (v: unknown) => (typeof v === 'string' ? v : '');
const bucket =
  (action: string): Rule =>
  (i) => [{ action, resource: { kind: 'bucket', bucket: str(i.Bucket) } }];
const object =
  (action: string): Rule =>
  (i) => [{ action, resource: { kind: 'object', bucket: str(i.Bucket), key: str(i.Key) } }];
const table =
  (action: string): Rule =>
  (i) => [{ action, resource: { kind: 'table', table: str(i.TableName) } }];
const pool =
  (action: string): Rule =>
  (i) => [{ action, resource: { kind: 'userPool', userPoolId: str(i.UserPoolId) } }];
/** The object a copy reads (`CopySource`: `bucket/key`, the key URL-encoded). */
const copySource = (i: Record<string, unknown>): Resource => {
  const source = str(i.CopySource).replace(/^\//, '');
  const slash = source.indexOf('/');
  return { kind: 'object', bucket: source.slice(0, slash), key: decodeURIComponent(source.slice(slash + 1)) };
};
/** Cognito's public (token-authenticated) operations: IAM policies do not apply to them. */
const publicApi: Rule = () => [];

/** `service/Command` to the IAM permissions it needs. */
export const IAM_RULES: Record<string, Rule> = {
  // S3 (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html)
  'S3/GetObject': object('s3:GetObject'),
  'S3/HeadObject': object('s3:GetObject'),
  // The GuardDuty scanner's one call (STRATUS_SCANNER=guardduty).
  'S3/GetObjectTagging': object('s3:GetObjectTagging'),
  'S3/PutObject': object('s3:PutObject'),
  'S3/CreateMultipartUpload': object('s3:PutObject'),
  'S3/UploadPart': object('s3:PutObject'),
  'S3/CompleteMultipartUpload': object('s3:PutObject'),
  'S3/UploadPartCopy': (i) => [
    ...object('s3:PutObject')(i),
    { action: 's3:GetObject', resource: copySource(i) },
  ],
  // A server-side replica copy: read on the source, write on the target; the default tagging
  // directive (COPY) carries the source's tags, which asks for the tagging actions too.
  'S3/CopyObject': (i) => {
    const source = copySource(i);
    return [
      ...object('s3:PutObject')(i),
      ...object('s3:PutObjectTagging')(i),
      { action: 's3:GetObject', resource: source },
      { action: 's3:GetObjectTagging', resource: source },
    ];
  },
  'S3/GetObjectAttributes': (i) =>
    object(i.VersionId ? 's3:GetObjectVersionAttributes' : 's3:GetObjectAttributes')(i),
  'S3/AbortMultipartUpload': object('s3:AbortMultipartUpload'),
  'S3/ListParts': object('s3:ListMultipartUploadParts'),
  'S3/DeleteObject': (i) => object(i.VersionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject')(i),
  'S3/HeadBucket': bucket('s3:ListBucket'),
  'S3/ListObjectsV2': bucket('s3:ListBucket'),
  'S3/ListObjectVersions': bucket('s3:ListBucketVersions'),
  'S3/ListMultipartUploads': bucket('s3:ListBucketMultipartUploads'),
  // DynamoDB (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html)
  'DynamoDB/GetItem': table('dynamodb:GetItem'),
  'DynamoDB/PutItem': table('dynamodb:PutItem'),
  'DynamoDB/UpdateItem': table('dynamodb:UpdateItem'),
  'DynamoDB/DeleteItem': table('dynamodb:DeleteItem'),
  'DynamoDB/Query': table('dynamodb:Query'),
  // A transaction needs, on each item, the action its entry would be alone.
  'DynamoDB/TransactWriteItems': (i) =>
    ((i.TransactItems ?? []) as Record<string, { TableName?: unknown }>[]).flatMap((entry) =>
      Object.entries(entry).map(([kind, op]) => ({
        action: `dynamodb:${kind === 'ConditionCheck' ? 'ConditionCheckItem' : `${kind}Item`}`,
        resource: { kind: 'table' as const, table: str(op.TableName) },
      })),
    ),
  'DynamoDB/Scan': table('dynamodb:Scan'),
  'DynamoDB/DescribeTable': table('dynamodb:DescribeTable'),
  // Cognito user pools (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncognitouserpools.html)
  'CognitoIdentityProvider/AdminCreateUser': pool('cognito-idp:AdminCreateUser'),
  'CognitoIdentityProvider/AdminSetUserPassword': pool('cognito-idp:AdminSetUserPassword'),
  'CognitoIdentityProvider/AdminAddUserToGroup': pool('cognito-idp:AdminAddUserToGroup'),
  'CognitoIdentityProvider/AdminRemoveUserFromGroup': pool('cognito-idp:AdminRemoveUserFromGroup'),
  'CognitoIdentityProvider/AdminDeleteUser': pool('cognito-idp:AdminDeleteUser'),
  'CognitoIdentityProvider/AdminGetUser': pool('cognito-idp:AdminGetUser'),
  'CognitoIdentityProvider/AdminInitiateAuth': pool('cognito-idp:AdminInitiateAuth'),
  'CognitoIdentityProvider/AdminUserGlobalSignOut': pool('cognito-idp:AdminUserGlobalSignOut'),
  'CognitoIdentityProvider/AdminResetUserPassword': pool('cognito-idp:AdminResetUserPassword'),
  'CognitoIdentityProvider/DescribeUserPoolClient': pool('cognito-idp:DescribeUserPoolClient'),
  'CognitoIdentityProvider/InitiateAuth': publicApi,
  'CognitoIdentityProvider/RespondToAuthChallenge': publicApi,
  'CognitoIdentityProvider/GetTokensFromRefreshToken': publicApi,
  'CognitoIdentityProvider/RevokeToken': publicApi,
  'CognitoIdentityProvider/ForgotPassword': publicApi,
  'CognitoIdentityProvider/ConfirmForgotPassword': publicApi,
  'CognitoIdentityProvider/GlobalSignOut': publicApi,
};

/** The permissions a command needs; throws for a command nobody has mapped yet. */
export function neededFor(c: SentCommand): Needed[] {
  const rule = IAM_RULES[`${c.service}/${c.command}`];
  if (!rule)
    throw new Error(
      `${c.group} sends ${c.service} ${c.command}, which test/support/sdk-recorder.ts does not map to IAM ` +
        'actions yet: add it (AWS Service Authorization Reference) so the IAM test can check it',
    );
  return rule(c.input);
}

/**
 * A client hook (AwsContainerHooks.client) that appends every command the client sends or
 * presigns to `sink`, attributed to `group`. Initialize is the first step, so commands that fail
 * later (emulator gaps, refused requests) are recorded too: they would be sent in AWS.
 */
export function recordInto(sink: SentCommand[], group: string) {
  return (client: AwsSdkClient) => {
    const stack = client.middlewareStack as unknown as {
      add(
        mw: (next: (args: unknown) => Promise<unknown>, context: Record<string, unknown>) => unknown,
        opts: { step: 'initialize'; name: string; priority: 'high' },
      ): void;
    };
    stack.add(
      (next, context) => async (args: unknown) => {
        const input = ((args as { input?: Record<string, unknown> }).input ?? {}) as Record<string, unknown>;
        sink.push({
          group,
          service: String(context.clientName ?? '').replace(/Client$/, ''),
          command: String(context.commandName ?? '').replace(/Command$/, ''),
          input,
        });
        return next(args);
      },
      { step: 'initialize', name: 'stratusIamRecorder', priority: 'high' },
    );
  };
}
