/**
 * Alarms and a dashboard for the stateless stack. Alarms notify an SNS topic (subscribe an email or
 * a chat integration to it); the dashboard shows the API, every function, the stream and
 * replication. The application's own metrics come from Powertools EMF in the `Stratus` namespace,
 * each with a roll-up by `service` that alarms can name.
 */
import { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

export interface MonitoringProps {
  stage: string;
  api: apigw.HttpApi;
  functions: Record<string, lambda.IFunction>;
  /** Every dead-letter and failure queue, by alarm name, with what a message in it means. */
  failureQueues: { name: string; queue: sqs.IQueue; meaning: string }[];
  /** The state stream's consumer: its iterator age is how far behind the table it reads. */
  streamConsumer: lambda.IFunction;
  /** Step Functions workflows (the reconcile sweep): alarm on any failed or timed-out execution. */
  stateMachines?: Record<string, sfn.StateMachine>;
  /** Minutes the stream consumer may lag before the iterator-age alarm fires (default 10). */
  iteratorAgeMinutes?: number;
  /** Seconds a replica may take to appear before the lag alarm fires. */
  replicaLagSeconds?: number;
}

const appMetric = (name: string, statistic: string, period = Duration.minutes(5)) =>
  new cloudwatch.Metric({
    namespace: 'Stratus',
    metricName: name,
    dimensionsMap: { service: 'stratus' },
    statistic,
    period,
  });

export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', {
      displayName: `Stratus ${props.stage} alarms`,
      enforceSSL: true,
    });
    const alarm = (
      name: string,
      metric: cloudwatch.Metric | cloudwatch.MathExpression,
      threshold: number,
      description: string,
    ) => {
      const a = metric.createAlarm(this, name, {
        alarmName: `stratus-${props.stage}-${name}`,
        alarmDescription: description,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(new actions.SnsAction(this.topic));
      this.alarms.push(a);
      return a;
    };

    for (const [name, fn] of Object.entries(props.functions)) {
      alarm(
        `${name}-errors`,
        fn.metricErrors({ period: Duration.minutes(5) }),
        5,
        `${name}: 5+ errors in 5 minutes`,
      );
      alarm(
        `${name}-throttles`,
        fn.metricThrottles({ period: Duration.minutes(5) }),
        1,
        `${name}: throttled`,
      );
    }
    alarm(
      'api-5xx',
      props.api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      10,
      'HTTP API: 10+ server errors in 5 minutes',
    );
    // A message in any failure queue is work that did not happen: alarm on the first one.
    for (const q of props.failureQueues)
      alarm(
        `${q.name}-depth`,
        q.queue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        1,
        q.meaning,
      );
    // Lambda's IteratorAge (milliseconds) of the stream mapping: records waiting to be processed.
    const iteratorAge = props.streamConsumer.metric('IteratorAge', {
      period: Duration.minutes(5),
      statistic: 'Maximum',
    });
    alarm(
      'stream-iterator-age',
      iteratorAge,
      (props.iteratorAgeMinutes ?? 10) * 60_000,
      'the state stream consumer is falling behind (cleanup and replication are delayed); records expire after 24 hours',
    );
    // One plain metric per alarm (no metric math: the emulator's CloudFormation refuses it).
    for (const [name, machine] of Object.entries(props.stateMachines ?? {})) {
      alarm(
        `${name}-failures`,
        machine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
        1,
        `${name}: an execution failed (a share of the sweep did not finish; its cursor keeps its place)`,
      );
      alarm(
        `${name}-timeouts`,
        machine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' }),
        1,
        `${name}: an execution timed out (a share outran the hour; its cursor keeps its place)`,
      );
    }
    alarm(
      'replication-failures',
      appMetric('stratus_replicas_failed_total', 'Sum'),
      1,
      'a replica failed every attempt; the reconciler retries it hourly',
    );
    alarm(
      'replica-lag',
      appMetric('stratus_replica_lag_seconds', 'p99'),
      props.replicaLagSeconds ?? 900,
      'replicas take too long to reach their nodes (p99 of plan-to-verified time)',
    );

    const fnWidgets = (title: string, pick: (fn: lambda.IFunction) => cloudwatch.IMetric) =>
      new cloudwatch.GraphWidget({
        title,
        width: 12,
        left: Object.entries(props.functions).map(([n, fn]) =>
          (pick(fn) as cloudwatch.Metric).with({ label: n, period: Duration.minutes(5) }),
        ),
      });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `stratus-${props.stage}`,
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'API requests and errors',
            width: 12,
            left: [props.api.metricCount({ period: Duration.minutes(5) })],
            right: [
              props.api.metricClientError({ period: Duration.minutes(5) }),
              props.api.metricServerError({ period: Duration.minutes(5) }),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'API latency',
            width: 12,
            left: [
              props.api.metricLatency({ statistic: 'p50', period: Duration.minutes(5) }),
              props.api.metricLatency({ statistic: 'p99', period: Duration.minutes(5) }),
            ],
          }),
        ],
        [
          fnWidgets('Function errors', (f) => f.metricErrors()),
          fnWidgets('Function duration p99', (f) => f.metricDuration({ statistic: 'p99' })),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Replication',
            width: 12,
            left: [
              appMetric('stratus_replicas_verified_total', 'Sum'),
              appMetric('stratus_replicas_failed_total', 'Sum'),
            ],
            right: [appMetric('stratus_replica_lag_seconds', 'p99')],
          }),
          new cloudwatch.GraphWidget({
            title: 'Failure queues, stream lag and storage traffic',
            width: 12,
            left: [
              ...props.failureQueues.map((q) =>
                q.queue.metricApproximateNumberOfMessagesVisible({ label: q.name }),
              ),
              iteratorAge.with({ label: 'stream iterator age (ms)' }),
            ],
            right: [
              appMetric('stratus_http_bytes_in_total', 'Sum'),
              appMetric('stratus_http_bytes_out_total', 'Sum'),
            ],
          }),
        ],
        [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 24, alarms: this.alarms })],
      ],
    });
  }
}
