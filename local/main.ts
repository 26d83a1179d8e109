/** `npm start`: the whole of Stratus in one process, on embedded defaults. */

import { ConfigError, loadConfig } from '../shared/config/config.ts';
import { Jobs } from '../shared/services/jobs.ts';
import { startGateway } from './gateway.ts';
import { createLocalContainer } from './local-container.ts';

async function main() {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`stratus: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (config.STRATUS_PROFILE !== 'local') {
    process.stderr.write(
      'stratus: npm start runs the local profile; unset STRATUS_PROFILE or set it to local\n',
    );
    process.exit(2);
  }
  const c = await createLocalContainer(config);
  // Background work (the change feed's replication and cleanup, timers) runs beside the requests: a
  // promise of it that fails unobserved is a bug to log, not a reason to stop serving everyone.
  process.on('unhandledRejection', (err: unknown) =>
    c.log.error('unhandled rejection in background work', {
      err: String((err as Error)?.stack ?? err),
    }),
  );
  const gw = await startGateway(c, config.HOST, config.PORT);
  process.stdout.write(`Stratus is running at ${gw.url} (data in ${config.STRATUS_DATA_DIR})\n`);
  // What the EventBridge schedules do in AWS (and, for the reaper and the housekeeping, what
  // DynamoDB's TTL and a server's autovacuum do by themselves): the jobs of shared/services/jobs.ts.
  const jobs = new Jobs(c);
  const every = (seconds: number, what: string, run: () => Promise<unknown>) =>
    seconds > 0
      ? setInterval(() => {
          run().catch((err: unknown) => c.log.error(`${what} failed`, { err: String(err) }));
        }, seconds * 1000).unref()
      : undefined;
  const sweep = every(config.STRATUS_SWEEP_INTERVAL_SECONDS, 'retention sweep', async () =>
    c.log.info('retention sweep', { ...(await jobs.retention()) }),
  );
  const reaper = every(config.STRATUS_REAPER_INTERVAL_SECONDS, 'state reaper', () => jobs.reapExpiredState());
  const housekeeping = jobs.hasDatabaseHousekeeping
    ? every(config.STRATUS_SWEEP_INTERVAL_SECONDS, 'database housekeeping', () => jobs.databaseHousekeeping())
    : undefined;
  const health = every(config.STRATUS_HEALTH_INTERVAL_SECONDS, 'node health check', () => jobs.health());
  const reconcile = every(config.STRATUS_RECONCILE_INTERVAL_SECONDS, 'reconciliation', () =>
    jobs.reconcile(),
  );
  const stop = async () => {
    clearInterval(health);
    clearInterval(housekeeping);
    clearInterval(reconcile);
    clearInterval(sweep);
    clearInterval(reaper);
    await gw.close();
    await c.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  // A setting the runtime refuses once it reads it (STRATUS_SCANNER=guardduty): a usage error too.
  if (err instanceof ConfigError) {
    process.stderr.write(`stratus: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`stratus: failed to start: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
