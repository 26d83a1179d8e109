/**
 * Deployment choices (infra/options.ts): each synthesizes nag-clean, and the template carries what
 * the choice promises — the VPC and ElastiCache Serverless by default, Aurora Serverless v2 with IAM
 * database auth, an external PostgreSQL/Redis with nothing created, customer-managed keys, global
 * table replicas — and a bad value stops synthesis with one clear line.
 * Bundling is skipped here (`aws:cdk:bundling-stacks`); test/infra/stacks.test.ts bundles for real.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/build-app.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] }>;

function synth(context: Record<string, string>) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-cdk-opt-'));
  const built = buildApp({ outdir, context: { stage: 'test', 'aws:cdk:bundling-stacks': [], ...context } });
  built.app.synth(); // throws on any unacknowledged cdk-nag finding
  const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { violations?: unknown[] }[];
  };
  return {
    built,
    stateful: Template.fromStack(built.stateful),
    stateless: Template.fromStack(built.stateless),
    violations: report.pluginReports.flatMap((r) => r.violations ?? []),
  };
}

const functionsOf = (t: Template) =>
  Object.entries(t.findResources('AWS::Lambda::Function') as Resources).filter(([id]) => id.startsWith('Fn'));

const envOf = (fn: { Properties: Record<string, unknown> }) =>
  (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;

function actions(t: Template): string[] {
  const out: string[] = [];
  for (const p of Object.values(t.findResources('AWS::IAM::Policy') as Resources)) {
    const doc = p.Properties.PolicyDocument as { Statement: { Action: string | string[] }[] };
    for (const st of doc.Statement) out.push(...(Array.isArray(st.Action) ? st.Action : [st.Action]));
  }
  return out;
}

describe('default: ElastiCache Serverless (Valkey) in a VPC the functions join', () => {
  const { stateful, stateless, violations } = synth({});

  it('is nag clean', () => {
    expect(violations).toEqual([]);
  });

  it('builds two-AZ private subnets with NAT egress, S3 and DynamoDB gateway endpoints and flow logs', () => {
    stateful.resourceCountIs('AWS::EC2::VPC', 1);
    stateful.resourceCountIs('AWS::EC2::NatGateway', 1);
    const endpoints = Object.values(stateful.findResources('AWS::EC2::VPCEndpoint') as Resources);
    expect(endpoints.map((e) => e.Properties.VpcEndpointType)).toEqual(['Gateway', 'Gateway']);
    expect(JSON.stringify(endpoints.map((e) => e.Properties.ServiceName))).toMatch(/s3[\s\S]*dynamodb/);
    stateful.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT' });
  });

  it('creates a Valkey serverless cache admitting only the functions on 6379', () => {
    stateful.hasResourceProperties('AWS::ElastiCache::ServerlessCache', {
      Engine: 'valkey',
      MajorEngineVersion: '8',
      SecurityGroupIds: [Match.anyValue()],
      SubnetIds: Match.anyValue(),
    });
    const ingress = Object.values(stateful.findResources('AWS::EC2::SecurityGroupIngress') as Resources);
    const cacheIngress = ingress.filter((i) => i.Properties.FromPort === 6379);
    expect(cacheIngress).toHaveLength(1);
    expect(JSON.stringify(cacheIngress[0]?.Properties.SourceSecurityGroupId)).toContain('FunctionsSg');
    expect(ingress.some((i) => i.Properties.CidrIp === '0.0.0.0/0')).toBe(false);
  });

  it('puts every function in the private subnets with the cache URL in cluster mode over TLS', () => {
    const fns = functionsOf(stateless);
    expect(fns.length).toBe(12);
    for (const [, fn] of fns) {
      expect(JSON.stringify(fn.Properties.VpcConfig)).toContain('FunctionsSg');
      const env = envOf(fn);
      expect(JSON.stringify(env.STRATUS_REDIS_URL)).toMatch(/^\{"Fn::Join":\["",\["rediss:\/\//);
      expect(env.STRATUS_REDIS_MODE).toBe('cluster');
    }
  });
});

describe('-c metadataStore=aurora: Aurora Serverless v2 with IAM database authentication', () => {
  const { stateful, stateless, violations } = synth({ metadataStore: 'aurora' });

  it('is nag clean and creates no DSQL cluster', () => {
    expect(violations).toEqual([]);
    stateful.resourceCountIs('AWS::DSQL::Cluster', 0);
  });

  it('creates an encrypted, IAM-authenticated Aurora PostgreSQL cluster that scales to zero, with a rotated admin secret', () => {
    stateful.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql',
      EnableIAMDatabaseAuthentication: true,
      StorageEncrypted: true,
      ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: 16 },
      EnableCloudwatchLogsExports: ['postgresql'],
      DatabaseName: 'stratus',
    });
    stateful.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceClass: 'db.serverless' });
    stateful.resourceCountIs('AWS::SecretsManager::RotationSchedule', 1);
    const ingress = Object.values(stateful.findResources('AWS::EC2::SecurityGroupIngress') as Resources);
    const db = ingress.filter((i) => i.Properties.FromPort === 5432);
    expect(db).toHaveLength(1);
    expect(JSON.stringify(db[0]?.Properties.SourceSecurityGroupId)).toContain('FunctionsSg');
  });

  it('functions connect as stratus_app with rds-db:connect and the RDS CA bundle; only the migration reads the admin secret', () => {
    const all = actions(stateless);
    expect(all).toContain('rds-db:connect');
    expect(all).not.toContain('dsql:DbConnectAdmin');
    for (const [id, fn] of functionsOf(stateless)) {
      const env = envOf(fn);
      expect(JSON.stringify(env.STRATUS_DATABASE_URL)).toContain('postgres://stratus_app@');
      expect(env.NODE_EXTRA_CA_CERTS).toBe('/var/runtime/ca-cert.pem');
      expect('STRATUS_DATABASE_ADMIN_SECRET_ARN' in env).toBe(id.startsWith('Fnmigrate'));
    }
    const policies = stateless.findResources('AWS::IAM::Policy') as Resources;
    const secretReaders = Object.keys(policies).filter((id) =>
      JSON.stringify(policies[id]?.Properties.PolicyDocument).includes('secretsmanager:GetSecretValue'),
    );
    expect(secretReaders).toHaveLength(1);
    expect(secretReaders[0]).toMatch(/^Fnmigrate/);
  });
});

describe('-c databaseUrl=… -c redisUrl=…: a PostgreSQL and a Redis you run (the emulator deploy uses this)', () => {
  const { stateful, stateless, violations } = synth({
    databaseUrl: 'postgres://stratus@db.internal:5432/stratus',
    redisUrl: 'redis://cache.internal:6379',
  });

  it('creates no database, cache or network and grants no database IAM action', () => {
    expect(violations).toEqual([]);
    for (const type of [
      'AWS::DSQL::Cluster',
      'AWS::RDS::DBCluster',
      'AWS::ElastiCache::ServerlessCache',
      'AWS::EC2::VPC',
    ])
      stateful.resourceCountIs(type, 0);
    expect(actions(stateless).filter((a) => a.startsWith('dsql:') || a.startsWith('rds-db:'))).toEqual([]);
  });

  it('hands the URLs to every function, outside any VPC', () => {
    for (const [, fn] of functionsOf(stateless)) {
      expect(fn.Properties.VpcConfig).toBeUndefined();
      const env = envOf(fn);
      expect(env.STRATUS_DATABASE_URL).toBe('postgres://stratus@db.internal:5432/stratus');
      expect(env.STRATUS_REDIS_URL).toBe('redis://cache.internal:6379');
      expect(env.STRATUS_REDIS_MODE).toBe('standalone');
    }
  });

  it('-c cache=none leaves the functions without Redis (per-instance limits)', () => {
    const t = synth({ databaseUrl: 'postgres://stratus@db.internal:5432/stratus', cache: 'none' });
    for (const [, fn] of functionsOf(t.stateless)) expect('STRATUS_REDIS_URL' in envOf(fn)).toBe(false);
    t.stateful.resourceCountIs('AWS::EC2::VPC', 0);
  });
});

describe('-c kms=true: customer-managed keys for data at rest', () => {
  const { stateful, violations } = synth({});
  const kms = synth({ kms: 'true' });

  it('is nag clean', () => {
    expect(kms.violations).toEqual([]);
    expect(violations).toEqual([]);
  });

  it('creates one rotated key with the stage alias, used by the blobs (with bucket keys), the table, DSQL and the cache', () => {
    const t = kms.stateful;
    t.resourceCountIs('AWS::KMS::Key', 1);
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/stratus-test-data' });
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() },
            BucketKeyEnabled: true,
          },
        ],
      },
    });
    t.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
    });
    t.hasResourceProperties('AWS::DSQL::Cluster', { KmsEncryptionKey: Match.anyValue() });
    t.hasResourceProperties('AWS::ElastiCache::ServerlessCache', { KmsKeyId: Match.anyValue() });
    // Without the flag: AWS-managed encryption and no key to pay for.
    stateful.resourceCountIs('AWS::KMS::Key', 0);
  });
});

describe('-c regions=us-east-1,eu-west-1 -c globalTable=true -c kms=true', () => {
  const { built, stateful, violations } = synth({
    regions: 'us-east-1,eu-west-1',
    globalTable: 'true',
    kms: 'true',
  });

  it('is nag clean', () => {
    expect(violations).toEqual([]);
  });

  it('replicates the state table to the other region, encrypted there with that region’s data key', () => {
    const table = Object.values(stateful.findResources('AWS::DynamoDB::GlobalTable') as Resources)[0];
    const replicas = table?.Properties.Replicas as { Region: string; SSESpecification?: unknown }[];
    expect(replicas.map((r) => r.Region).sort()).toEqual(['eu-west-1', 'us-east-1']);
    const eu = replicas.find((r) => r.Region === 'eu-west-1');
    expect(JSON.stringify(eu?.SSESpecification)).toMatch(/kms:eu-west-1:.*alias\/stratus-test-data/);
    // The replica region's key exists before the table and the replica bucket need it.
    expect(built.keyStacks.map((k) => k.region)).toEqual(['eu-west-1']);
    expect(built.stateful.dependencies).toContain(built.keyStacks[0]);
  });

  it('replicates KMS-encrypted objects, re-encrypting with the peer region’s key', () => {
    const replica = Template.fromStack(built.replicas[0] as NonNullable<(typeof built.replicas)[0]>);
    replica.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Role: Match.anyValue(),
        Rules: [
          Match.objectLike({
            SourceSelectionCriteria: {
              ReplicaModifications: { Status: 'Enabled' },
              SseKmsEncryptedObjects: { Status: 'Enabled' },
            },
            Destination: Match.objectLike({
              EncryptionConfiguration: { ReplicaKmsKeyID: Match.anyValue() },
            }),
          }),
        ],
      },
    });
    expect(JSON.stringify(replica.toJSON())).toContain(':alias/stratus-test-data');
  });
});

describe('bad choices stop synthesis with one clear line', () => {
  it.each([
    [{ metadataStore: 'mysql' }, /-c metadataStore=mysql: expected one of dsql, aurora, external/],
    [{ metadataStore: 'external' }, /needs -c databaseUrl=postgres/],
    [{ databaseUrl: 'mysql://x' }, /databaseUrl must be a postgres:\/\/ URL/],
    [{ cache: 'memcached' }, /-c cache=memcached: expected one of valkey, none, external/],
    [{ cache: 'external' }, /-c cache=external needs -c redisUrl=redis:\/\/…/],
    [
      { cache: 'none', redisUrl: 'redis://r:6379' },
      /-c redisUrl is only used with -c cache=external \(not none\)/,
    ],
    [
      { metadataStore: 'aurora', databaseUrl: 'postgres://x@h/d' },
      /databaseUrl is only used with -c metadataStore=external/,
    ],
    [{ globalTable: 'true' }, /globalTable=true needs at least two -c regions/],
    [{ kms: 'yes' }, /-c kms=yes: expected true or false/],
    [{ purgeGraceDays: '0' }, /-c purgeGraceDays=0: a whole number of days from 1 to 365/],
    [{ purgeGraceDays: 'soon' }, /-c purgeGraceDays=soon/],
    [{ inlineVerifyMiB: '2048' }, /-c inlineVerifyMiB=2048: a whole number of MiB from 0 to 1024/],
    [{ inlineVerifyMiB: '-1' }, /-c inlineVerifyMiB=-1/],
    [{ reconcilePartitions: '0' }, /-c reconcilePartitions=0: a whole number from 1 to 256/],
    [{ reconcilePartitions: '300' }, /-c reconcilePartitions=300/],
    [{ regions: 'us-east-1,mars-1' }, /"mars-1" is not a region name/],
    [{ stage: 'Prod!' }, /-c stage=Prod!/],
  ])('%o', (context, message) => {
    expect(() => synth(context as Record<string, string>)).toThrow(message);
  });
});

describe('multi-Region Aurora DSQL (-c regions=us-east-1,us-east-2 -c dsqlWitness=us-west-2)', () => {
  const arn = (region: string, id: string) => `arn:aws:dsql:${region}:123456789012:cluster/${id}`;

  it('first deploy: a cluster in each region with the shared witness region, each ARN an output', () => {
    const { built, stateful, violations } = synth({
      regions: 'us-east-1,us-east-2',
      dsqlWitness: 'us-west-2',
    });
    expect(violations).toEqual([]);
    stateful.hasResourceProperties('AWS::DSQL::Cluster', {
      MultiRegionProperties: { WitnessRegion: 'us-west-2' },
    });
    stateful.hasOutput('MetadataClusterArn', {});
    const replica = Template.fromStack(built.replicas[0] as NonNullable<(typeof built.replicas)[0]>);
    replica.hasResourceProperties('AWS::DSQL::Cluster', {
      MultiRegionProperties: { WitnessRegion: 'us-west-2' },
    });
    replica.hasOutput('MetadataClusterArn', {});
    // Not peered yet: no cluster names another.
    expect(JSON.stringify(stateful.toJSON())).not.toContain('"Clusters"');
  });

  it('second deploy (-c dsqlPeers=…): both clusters name both ARNs, so later deploys keep the peering', () => {
    const peers = [
      arn('us-east-1', 'auabudrks5jwh4mjt6o5xxhr4y'),
      arn('us-east-2', 'imabudrfon4p2z3nv2jo4rlajm'),
    ];
    const { built, stateful, violations } = synth({
      regions: 'us-east-1,us-east-2',
      dsqlWitness: 'us-west-2',
      dsqlPeers: peers.join(','),
    });
    expect(violations).toEqual([]);
    for (const t of [
      stateful,
      Template.fromStack(built.replicas[0] as NonNullable<(typeof built.replicas)[0]>),
    ])
      t.hasResourceProperties('AWS::DSQL::Cluster', {
        MultiRegionProperties: { WitnessRegion: 'us-west-2', Clusters: peers },
      });
  });

  it.each([
    [{ regions: 'us-east-1', dsqlWitness: 'us-west-2' }, /needs exactly two -c regions/],
    [{ regions: 'us-east-1,us-west-2', dsqlWitness: 'us-west-2' }, /must be a third region/],
    [
      { regions: 'us-east-1,us-east-2', dsqlWitness: 'us-west-2', metadataStore: 'aurora' },
      /is for -c metadataStore=dsql/,
    ],
    [
      { regions: 'us-east-1,us-east-2', dsqlPeers: arn('us-east-1', 'a'.repeat(26)) },
      /dsqlPeers needs -c dsqlWitness/,
    ],
    [
      {
        regions: 'us-east-1,us-east-2',
        dsqlWitness: 'us-west-2',
        dsqlPeers: `${arn('us-east-1', 'a'.repeat(26))},${arn('eu-west-1', 'b'.repeat(26))}`,
      },
      /one cluster ARN per region/,
    ],
    [
      { regions: 'us-east-1,us-east-2', dsqlWitness: 'us-west-2', dsqlPeers: 'nonsense' },
      /is not a DSQL cluster ARN/,
    ],
  ])('refuses %o', (context, message) => {
    expect(() => synth(context as Record<string, string>)).toThrow(message);
  });
});

describe('-c inlineVerifyMiB: which uploads the verifier function commits (202)', () => {
  it('gives every function the limit in bytes, 64 MiB by default', () => {
    const envs = (t: Template) =>
      Object.values(t.findResources('AWS::Lambda::Function'))
        .map(
          (f) => (f as { Properties: { Environment?: { Variables?: Record<string, string> } } }).Properties,
        )
        .map((p) => p.Environment?.Variables?.STRATUS_INLINE_VERIFY_BYTES)
        .filter((v) => v !== undefined);
    const byDefault = envs(Template.fromStack(synth({}).built.stateless));
    expect(byDefault.length).toBeGreaterThanOrEqual(11);
    expect(new Set(byDefault)).toEqual(new Set([String(64 * 1024 * 1024)]));
    expect(new Set(envs(Template.fromStack(synth({ inlineVerifyMiB: '0' }).built.stateless)))).toEqual(
      new Set(['0']),
    );
  });
});

describe('-c reconcilePartitions: how many shares of the sweep the Distributed Map runs at once', () => {
  it('lists that many partitions and runs them all at once', () => {
    const t = Template.fromStack(synth({ reconcilePartitions: '3' }).built.stateless);
    const [machine] = Object.values(t.findResources('AWS::StepFunctions::StateMachine')) as {
      Properties: { DefinitionString: unknown };
    }[];
    const text = JSON.stringify(machine?.Properties.DefinitionString);
    expect(text).toContain('{\\"index\\":2,\\"count\\":3}');
    expect(text).not.toContain('\\"index\\":3');
    expect(text).toContain('\\"MaxConcurrency\\":3');
  });
});

describe('-c purgeGraceDays: how long S3 keeps what the application purged', () => {
  it('sets the noncurrent-version expiry of every blob bucket', () => {
    const { built, stateful } = synth({ purgeGraceDays: '30', regions: 'us-east-1,eu-west-1' });
    for (const t of [
      stateful,
      Template.fromStack(built.replicas[0] as NonNullable<(typeof built.replicas)[0]>),
    ])
      t.hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({
              NoncurrentVersionExpiration: { NoncurrentDays: 30 },
              ExpiredObjectDeleteMarker: true,
            }),
          ]),
        },
      });
  });
});
