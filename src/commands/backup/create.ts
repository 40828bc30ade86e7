import {Flags} from '@oclif/core'
import {acceptKeysFlag, BaseCommand, backupKeyFlag, backupToFlag, configFlag} from '../../cli/base.js'
import {terminalIo} from '../../cli/io.js'
import {createBackup, type ArtifactRecord} from '../../ops/backup/backup.js'
import {PG_FORMATS, PG_STAGING_DIR, type PgFormat} from '../../ops/backup/postgres.js'

/** A table dump's counts are rows per table: summed; other counts are few and shown as they are. */
function countsText(a: ArtifactRecord): string {
  const counts = Object.entries(a.counts ?? {})
  if (a.component === 'postgresql') return `${counts.reduce((m, [, n]) => m + n, 0)} rows in ${counts.length} tables`
  return counts.filter(([k]) => !k.includes('.')).map(([k, v]) => `${k}: ${v}`).join(', ')
}

export default class BackupCreate extends BaseCommand<typeof BackupCreate> {
  static override summary = 'Back up every store of the cluster into one encrypted set; its manifest is written last.'
  static override description = [
    'PostgreSQL (every database of the cluster, each dumped by the server\'s own pg_dump on its host, and the roles), Redis (the RDB of a BGSAVE that finished and succeeded),',
    "ejabberd's internal database and configuration, MinIO's objects (every bucket but imctl-backups) with their headers and an index of their sha256,",
    "Kafka's topic settings and consumer-group offsets (and with --kafka-data every record), and the cluster's own cluster.yaml, secrets and rendered files.",
    'Every artifact streams from its host, is gzipped where that helps and encrypted with AES-256-GCM under the backup key.',
    'The key lives apart from the backups: by default ~/.config/imctl/<cluster>.backup-key, created on first use. Keep a copy of it elsewhere.',
  ].join(' ')
  static override examples = ['<%= config.bin %> backup create', '<%= config.bin %> backup create --to /srv/backups --key /root/keys/chat.backup-key --json', '<%= config.bin %> backup create --kafka-data', '<%= config.bin %> backup create --pg-format custom']
  static override flags = {
    config: configFlag,
    'accept-new-host-keys': acceptKeysFlag,
    to: backupToFlag,
    key: backupKeyFlag,
    'pg-format': Flags.string({
      description: `PostgreSQL dump format. directory: pg_dump -Fd with parallel jobs (the host's cores, at most 8), staged in ${PG_STAGING_DIR} on the database host (the largest database must fit there, checked first) and streamed out as one tar. custom: pg_dump -Fc in one job, streamed without a copy on the host: use it on a host short of disk.`,
      options: [...PG_FORMATS],
      default: 'directory',
    }),
    'kafka-data': Flags.boolean({description: 'Kafka: every record of every topic too (key, value, headers, timestamp), not only topic settings and consumer-group offsets.', default: false}),
  }

  async run(): Promise<void> {
    const io = terminalIo({interactive: !this.nonInteractive, quiet: this.flags.json, warn: (m) => this.warn2(m)})
    const r = await createBackup({
      configFile: this.flags.config,
      ...(this.flags.to ? {to: this.flags.to} : {}),
      ...(this.flags.key ? {keyFile: this.flags.key} : {}),
      kafkaData: this.flags['kafka-data'],
      pgFormat: this.flags['pg-format'] as PgFormat,
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      io,
    })
    this.output(r, (x) =>
      [
        `Backup set ${x.id} of cluster ${x.cluster} is complete: ${x.dir}`,
        ...x.artifacts.map((a) => `  ${a.name}  ${a.size} bytes  ${a.what}${a.counts ? `  (${countsText(a)})` : ''}`),
        `Encrypted with the key in ${x.keyFile}${x.keyCreated ? ' (created now: copy it somewhere safe, apart from the backups)' : ''}.`,
      ].join('\n'),
    )
  }
}
