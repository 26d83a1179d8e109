/**
 * The Postgres-compatible metadata store, by `-c metadataStore=`:
 * - `dsql` (default): an Aurora DSQL cluster. No network, no password: functions sign a fresh IAM
 *   token per connection (@aws-sdk/dsql-signer) for the `stratus_app` database role
 *   (`dsql:DbConnect`), which the migration creates with data rights only and maps to each
 *   function's IAM role (`AWS IAM GRANT`); only the migration connects as `admin`
 *   (`dsql:DbConnectAdmin`). In prod the cluster is retained on stack deletion and backed up daily
 *   by AWS Backup.
 * - `aurora`: Aurora Serverless v2 PostgreSQL 16 in the private subnets, scaling to zero when idle.
 *   The generated admin secret (rotated monthly) is read only by the deploy-time migration, which
 *   also creates the `stratus_app` role with `rds_iam`; functions sign IAM tokens for that role
 *   (`rds-db:connect`, @aws-sdk/rds-signer) and verify the server against Amazon's RDS CA bundle.
 * - `external`: a PostgreSQL 15+ you run, by URL (`-c databaseUrl=`). Nothing is created; a
 *   password in the URL lands in the functions' environment, so prefer IAM-authenticated stores.
 */
import { Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as dsql from 'aws-cdk-lib/aws-dsql';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import type { Network } from './network.ts';
import type { MetadataStore } from './options.ts';

/** The database role the functions log in as on DSQL and Aurora (created by the migration). */
export const APP_DB_USER = 'stratus_app';
export const AURORA_APP_USER = APP_DB_USER;
/** Lambda's Node.js 20+ runtimes ship the RDS CA bundle here but do not load it by default. */
export const RDS_CA_BUNDLE = '/var/runtime/ca-cert.pem';

export interface MetadataStoreResources {
  store: MetadataStore;
  /** STRATUS_DATABASE_URL for the functions. */
  url: string;
  /** Host name (for outputs; never a password). */
  endpoint: string;
  /** Extra environment every function needs to reach the store. */
  environment: Record<string, string>;
  /** Lets a function connect as the application. */
  grantConnect(fn: iam.IGrantable): void;
  /**
   * DSQL: the database role is mapped to IAM roles inside the database (`AWS IAM GRANT`), so the
   * migration must be told every role that connects as the application.
   */
  mapsIamRoles: boolean;
  /** Environment and grants of the migration function (Aurora: the admin secret). */
  grantMigrate(fn: iam.IGrantable): Record<string, string>;
  /** Whether functions must run in the VPC to reach it. */
  inVpc: boolean;
  dsql?: dsql.CfnCluster;
  aurora?: rds.DatabaseCluster;
}

export interface MetadataStoreProps {
  stage: string;
  store: MetadataStore;
  /** Multi-Region DSQL: the witness region, and (second deploy) the peered cluster ARNs. */
  dsqlWitness?: string;
  dsqlPeers?: string[];
  databaseUrl?: string;
  network?: Network;
  key?: kms.IKey;
}

export function createMetadataStore(scope: Stack, props: MetadataStoreProps): MetadataStoreResources {
  if (props.store === 'external') {
    const url = props.databaseUrl ?? '';
    return {
      store: 'external',
      url,
      endpoint: new URL(url).host,
      environment: {},
      grantConnect: () => undefined,
      grantMigrate: () => ({}),
      mapsIamRoles: false,
      inVpc: false,
    };
  }

  if (props.store === 'aurora') {
    const network = props.network;
    if (!network) throw new Error('stratus: Aurora needs the VPC (internal error)');
    const sg = new ec2.SecurityGroup(scope, 'MetadataSg', {
      vpc: network.vpc,
      description: 'Stratus metadata: PostgreSQL from the functions only',
      allowAllOutbound: false,
    });
    sg.addIngressRule(network.functions, ec2.Port.tcp(5432), 'functions to PostgreSQL');
    const prod = props.stage === 'prod';
    const cluster = new rds.DatabaseCluster(scope, 'MetadataAurora', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({
        version: rds.AuroraPostgresEngineVersion.VER_16_10,
      }),
      writer: rds.ClusterInstance.serverlessV2('writer'),
      readers: prod ? [rds.ClusterInstance.serverlessV2('reader', { scaleWithWriter: true })] : [],
      // Scales to zero ACUs after idle minutes outside prod (the first query then waits ~15 s).
      serverlessV2MinCapacity: prod ? 0.5 : 0,
      serverlessV2MaxCapacity: 16,
      vpc: network.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [sg],
      // The admin secret stays under Secrets Manager's own key: granting the migration function (in
      // the stateless stack) use of the data key would tie the two stacks in a cycle.
      credentials: rds.Credentials.fromGeneratedSecret('stratus_admin'),
      defaultDatabaseName: 'stratus',
      iamAuthentication: true,
      storageEncrypted: true,
      ...(props.key ? { storageEncryptionKey: props.key } : {}),
      cloudwatchLogsExports: ['postgresql'],
      backup: { retention: Duration.days(prod ? 14 : 7) },
      deletionProtection: prod,
      removalPolicy: prod ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
    });
    cluster.addRotationSingleUser({ automaticallyAfter: Duration.days(30) });
    const host = cluster.clusterEndpoint.hostname;
    return {
      store: 'aurora',
      url: `postgres://${AURORA_APP_USER}@${host}:5432/stratus?sslmode=verify-full`,
      endpoint: host,
      environment: { NODE_EXTRA_CA_CERTS: RDS_CA_BUNDLE },
      grantConnect: (fn) => {
        cluster.grantConnect(fn, AURORA_APP_USER);
      },
      grantMigrate: (fn) => {
        cluster.secret?.grantRead(fn);
        return { STRATUS_DATABASE_ADMIN_SECRET_ARN: cluster.secret?.secretArn ?? '' };
      },
      mapsIamRoles: false,
      inVpc: true,
      aurora: cluster,
    };
  }

  const cluster = dsqlCluster(scope, props);
  const connect = (action: 'dsql:DbConnect' | 'dsql:DbConnectAdmin') =>
    new iam.PolicyStatement({ actions: [action], resources: [cluster.attrResourceArn] });
  return {
    store: 'dsql',
    // The functions' user; the migration swaps in `admin` for itself.
    url: `postgres://${APP_DB_USER}@${cluster.attrEndpoint}:5432/postgres?sslmode=require`,
    endpoint: cluster.attrEndpoint,
    environment: {},
    grantConnect: (fn) => {
      fn.grantPrincipal.addToPrincipalPolicy(connect('dsql:DbConnect'));
    },
    grantMigrate: (fn) => {
      fn.grantPrincipal.addToPrincipalPolicy(connect('dsql:DbConnectAdmin'));
      return {};
    },
    mapsIamRoles: true,
    inVpc: false,
    dsql: cluster,
  };
}

/**
 * An Aurora DSQL cluster; with a witness region, one half of a multi-Region cluster. Peering is
 * AWS's documented two-step CloudFormation procedure: both clusters are created with the witness
 * region, then both templates name both ARNs (`-c dsqlPeers=`), so no later deploy un-peers them.
 */
export function dsqlCluster(
  scope: Stack,
  props: { stage: string; key?: kms.IKey; dsqlWitness?: string; dsqlPeers?: string[] },
): dsql.CfnCluster {
  // DSQL encrypts with the key on the caller's behalf.
  if (props.key)
    props.key.grant(new iam.ServicePrincipal('dsql.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
  const prod = props.stage === 'prod';
  const cluster = new dsql.CfnCluster(scope, 'Metadata', {
    deletionProtectionEnabled: prod,
    ...(props.key ? { kmsEncryptionKey: props.key.keyArn } : {}),
    ...(props.dsqlWitness
      ? {
          multiRegionProperties: {
            witnessRegion: props.dsqlWitness,
            ...(props.dsqlPeers ? { clusters: props.dsqlPeers } : {}),
          },
        }
      : {}),
  });
  // In prod, deletion protection stops a careless delete; Retain keeps the data when the stack
  // goes; AWS Backup's daily recovery points (kept 35 days) and monthly ones (kept a year) undo what
  // the application or an operator deletes by mistake. Other stages tear down whole (a vault with
  // recovery points could not be deleted with the stack).
  cluster.applyRemovalPolicy(prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY);
  if (prod) {
    const vault = new backup.BackupVault(scope, 'MetadataBackupVault', {
      ...(props.key ? { encryptionKey: props.key } : {}),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const plan = new backup.BackupPlan(scope, 'MetadataBackupPlan', {
      backupVault: vault,
      backupPlanRules: [
        new backup.BackupPlanRule({
          ruleName: 'daily',
          scheduleExpression: events.Schedule.cron({ hour: '3', minute: '0' }),
          deleteAfter: Duration.days(35),
        }),
        new backup.BackupPlanRule({
          ruleName: 'monthly',
          scheduleExpression: events.Schedule.cron({ day: '1', hour: '4', minute: '0' }),
          deleteAfter: Duration.days(365),
        }),
      ],
    });
    plan.addSelection('Metadata', {
      resources: [backup.BackupResource.fromArn(cluster.attrResourceArn)],
    });
  }
  return cluster;
}
