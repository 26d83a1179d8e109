/**
 * Deploy-time schema migrations: a CloudFormation custom resource (CDK Provider) calls this on
 * every deploy whose migration count changed, before the API functions are updated. Running DDL
 * here, once, instead of in every cold start keeps concurrent cold starts from racing on the schema
 * and keeps DDL rights out of the request path. Delete is a no-op: data outlives the stack.
 */
import { migrate, migrations } from '../../shared/adapters/postgres/migrations.ts';
import { openPgDatabase } from '../../shared/adapters/postgres/pg-database.ts';
import { databaseOptions } from '../aws-container.ts';

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
}

export async function handler(event: CustomResourceEvent) {
  const physical = event.PhysicalResourceId ?? 'stratus-schema';
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physical };
  const url = process.env.STRATUS_DATABASE_URL;
  const region = process.env.AWS_REGION;
  if (!url || !region) throw new Error('STRATUS_DATABASE_URL and AWS_REGION must be set');
  const db = await openPgDatabase({ ...databaseOptions(url, region), max: 1 });
  try {
    const applied = await migrate(db);
    return {
      PhysicalResourceId: physical,
      Data: { applied: String(applied), latest: String(migrations.length) },
    };
  } finally {
    await db.close();
  }
}
