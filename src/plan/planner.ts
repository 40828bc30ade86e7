import {createTwoFilesPatch} from 'diff'
import {attachPolicy, canonicalPolicy, detachPolicy, makeBucket, putPolicy, putUser, waitWritable} from '../components/minio/mc.js'
import type {ComponentName} from '../config/model.js'
import {versionMatches, type PinnedPackage} from '../config/manifest.js'
import type {RemoteCommand} from '../transport/command.js'
import {shScript} from '../transport/command.js'
import type {HostFacts} from './facts.js'
import {PENDING_DIR, STATE_DIR, sqlIdent, sqlLiteral} from './observe.js'
import type {ContainerSpec, FileResource, ImageArtifact, Resource} from './resources.js'
import {artifactSums, resourceKey} from './resources.js'
import {installPackagesOffline} from './offline.js'
import {firewallProblem, loadFirewall, removeFirewall, sourceAllows} from './firewall.js'

export type StepRun =
  | {type: 'exec'; commands: RemoteCommand[]}
  /** Read a file on one host (in a component's container on an engine) and feed it to a command on another. */
  | {type: 'pipe'; source: {host: string; path: string; component: ComponentName}; target: {host: string; command: RemoteCommand}}
  | {type: 'xmpp-account'; user: string; domain: string; password: string; apiPort: number}
  | {type: 'engine'; op: EngineOp}
  /** Put an artifact's files into `dir` (only those not already there), check them, then write its SHA256SUMS. */
  | {type: 'upload'; name: string; version: string; dir: string; files: {path: string; sha256: string; mode?: string}[]}

/** Changes to an engine host, as data; the engine transport carries them out. */
export type EngineOp =
  | {op: 'network'; name: string}
  | {op: 'build-image'; tag: string; contextDir: string; contextFiles: string[]; artifacts?: ImageArtifact[]}
  | {op: 'load-image'; tag: string}
  | {op: 'create-container'; spec: ContainerSpec; files: FileResource[]; replace: boolean}
  | {op: 'start-container'; name: string; ready: RemoteCommand}
  | {op: 'remove-container'; name: string; purgeVolumes: boolean}

/** One change to one host: what, where, why — and how, as data. */
export interface Step {
  id: string
  host: string
  component: ComponentName
  action: 'install' | 'upgrade' | 'write' | 'start' | 'restart' | 'reload' | 'enable' | 'create' | 'update' | 'load' | 'build' | 'recreate' | 'remove' | 'upload' | 'run'
  what: string
  why: string
  diff?: string
  /** Components that must be fully converged before this step runs. */
  after: ComponentName[]
  run: StepRun
}

export interface Plan {
  steps: Step[]
  /** Resources already as desired. */
  unchanged: number
  /** Problems found while observing that make the plan unsafe to apply. */
  blockers: string[]
}

/**
 * Compares desired resources with observed facts and returns the steps that would
 * change something. Pure: the same inputs give the same plan.
 */
export function planChanges(
  resources: Resource[],
  facts: Record<string, HostFacts>,
  componentOrder: ComponentName[],
  dependsOn: (c: ComponentName) => ComponentName[],
  redact: (text: string) => string = (t) => t,
  opts: {
    purgeData?: boolean
    ready?: (c: ComponentName) => RemoteCommand
    /** `imctl upgrade`: an installed package off its pin is brought to it (a step), not a blocker. */
    upgrade?: boolean
  } = {},
): Plan {
  const recreated = new Set<string>()
  const readyCheck = (c: ComponentName): RemoteCommand => {
    if (!opts.ready) throw new Error(`bug: no readiness check given for ${c}`)
    return opts.ready(c)
  }
  const steps: Step[] = []
  const blockers: string[] = []
  let unchanged = 0
  // Packages, networks and images first (they wait for nothing), then components in
  // dependency order, each component's resources in the order the component lists them.
  const rank = (r: Resource) =>
    r.kind === 'file' && r.aptSource
      ? -3
      : r.kind === 'artifact' && r.name === 'debs'
        ? -2
        : r.kind === 'packages' || r.kind === 'network' || r.kind === 'image'
          ? -1
          : componentOrder.indexOf(r.component)
  const sorted = resources.map((r, i) => ({r, i})).sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i).map((x) => x.r)
  const changedFilesFor = new Map<string, string[]>()
  /** Changed files that a unit's reload picks up (certificates, Patroni's config). */
  const reloadableFiles = new Set<string>()
  /** `host:unit` that some file not marked reloadable notifies: a change of unknown origin restarts it. */
  const restartFiles = new Set(resources.flatMap((r) => (r.kind === 'file' && !r.reloadable ? r.notify.map((u) => `${r.host}:${u}`) : [])))
  const installsOn = new Set<string>()
  /** `host:component` whose packages an upgrade changes: their services restart on the new version. */
  const upgraded = new Set<string>()

  for (const r of sorted) {
    const f = facts[r.host]
    if (!f) throw new Error(`bug: no facts for host ${r.host}`)
    const id = resourceKey(r)
    const base = {id, host: r.host, component: r.component, after: [] as ComponentName[]}
    switch (r.kind) {
      case 'packages': {
        const missing = r.packages.filter((p) => !f.packages[p.name])
        const off = r.packages.filter((p) => f.packages[p.name] && !versionMatches(p.version, f.packages[p.name]!))
        if (opts.upgrade && !r.offlineRepo && (off.length || missing.length)) {
          // One step per component, so an upgrade can take each component on its own.
          const owner = (p: PinnedPackage) => r.owners?.[p.name] ?? r.component
          for (const c of [...new Set([...off, ...missing].map(owner))]) {
            const mine = [...off, ...missing].filter((p) => owner(p) === c)
            for (const p of mine) if (!f.packages[p.name]) installsOn.add(r.host)
            upgraded.add(`${r.host}:${c}`)
            steps.push({
              ...base,
              id: `${id}:${c}`,
              component: c,
              action: 'upgrade',
              what: `upgrade ${mine.map((p) => `${p.name} to ${p.version}${p.suite ? ` (${p.suite})` : ''}`).join(', ')}`,
              why: mine.map((p) => `${p.name} ${f.packages[p.name] ?? 'is not installed'}${f.packages[p.name] ? ' is installed' : ''}`).join('; '),
              run: {type: 'exec', commands: upgradePackages(mine)},
            })
          }
          break
        }
        for (const p of off) {
          blockers.push(`${r.host}: ${p.name} ${f.packages[p.name]} is installed but this release pins ${p.version}; an upgrade or downgrade is not an install (see \`imctl upgrade\`)`)
        }
        if (!missing.length) {
          unchanged++
          break
        }
        installsOn.add(r.host)
        const names = missing.map((p) => p.name)
        const suites = new Map<string, string[]>()
        for (const p of missing) if (p.suite) suites.set(p.suite, [...(suites.get(p.suite) ?? []), p.name])
        steps.push({
          ...base,
          action: 'install',
          what: `install ${names.join(' ')}${r.offlineRepo ? ' from the bundle' : ''}`,
          why: 'not installed',
          run: {
            type: 'exec',
            commands: r.offlineRepo ? installPackagesOffline(r.offlineRepo, names) : installPackages(missing.filter((p) => !p.suite).map((p) => p.name), [...suites]),
          },
        })
        break
      }
      case 'file': {
        const now = f.files[r.path] ?? null
        const desired = Buffer.from(r.content)
        const contentSame = now !== null && now.content.equals(desired)
        const metaSame = now !== null && now.owner === r.owner && now.group === r.group && now.mode === r.mode
        if (contentSame && metaSame) {
          unchanged++
          break
        }
        if (!contentSame) for (const u of r.notify) changedFilesFor.set(`${r.host}:${u}`, [...(changedFilesFor.get(`${r.host}:${u}`) ?? []), r.path])
        if (!contentSame && r.reloadable) reloadableFiles.add(`${r.host}:${r.path}`)
        const why = now === null ? 'does not exist' : !contentSame ? 'content differs' : `owner/mode is ${now.owner}:${now.group} ${now.mode}`
        steps.push({
          ...base,
          action: 'write',
          what: `write ${r.path} (${r.owner}:${r.group} ${r.mode})`,
          why,
          ...(contentSame ? {} : {diff: shownDiff(r, now?.content.toString('utf8') ?? '', redact)}),
          run: {type: 'exec', commands: [...(contentSame ? [] : (r.before ?? [])), ...writeFile(r.path, r.content, r.owner, r.group, r.mode, contentSame ? [] : r.notify, Boolean(r.daemonReload) && !contentSame)]},
        })
        break
      }
      case 'system-user': {
        if (f.users[r.user]) {
          unchanged++
          break
        }
        steps.push({...base, action: 'create', what: `create system user ${r.user}`, why: 'does not exist', run: {type: 'exec', commands: [createSystemUser(r.user, r.home)]}})
        break
      }
      case 'directory': {
        const now = f.paths[r.path] ?? null
        if (now?.type === 'directory' && now.owner === r.owner && now.group === r.group && now.mode === r.mode) {
          unchanged++
          break
        }
        if (now && now.type !== 'directory') {
          blockers.push(`${r.host}: ${r.path} should be a directory but is a ${now.type === 'file' ? 'file' : 'special file'}; move it away`)
          break
        }
        const why = now === null ? 'does not exist' : `owner/mode is ${now.owner}:${now.group} ${now.mode}`
        steps.push({...base, action: now ? 'update' : 'create', what: `directory ${r.path} (${r.owner}:${r.group} ${r.mode})`, why, run: {type: 'exec', commands: [ensureDirectory(r.path, r.owner, r.group, r.mode)]}})
        break
      }
      case 'artifact': {
        const now = f.files[`${r.dir}/SHA256SUMS`]?.content.toString('utf8') ?? null
        if (now === artifactSums(r.files)) {
          unchanged++
          break
        }
        steps.push({
          ...base,
          action: 'upload',
          what: `upload ${r.name} ${r.version} (${r.files.length} files) to ${r.dir}`,
          why: now === null ? 'not on this host' : 'files differ from the release',
          run: {type: 'upload', name: r.name, version: r.version, dir: r.dir, files: r.files},
        })
        break
      }
      case 'once': {
        if (f.paths[r.marker]) {
          unchanged++
          break
        }
        steps.push({...base, after: r.after, action: 'run', what: r.what, why: `${r.marker} does not exist`, run: {type: 'exec', commands: [r.command]}})
        break
      }
      case 'mount': {
        const now = f.mounts[r.path] ?? null
        if (now && now.target.replace(/\/+$/, '') === r.path.replace(/\/+$/, '')) {
          unchanged++
          break
        }
        const is = now ? `it is on the ${now.fstype} filesystem mounted at ${now.target}` : 'it does not exist'
        blockers.push(`${r.host}: ${r.path} is not a filesystem of its own (${is}): ${r.why}. Mount a disk there (listed in /etc/fstab), then run install again`)
        break
      }
      case 'minio-bucket': {
        if (f.minio?.buckets.includes(r.bucket)) {
          unchanged++
          break
        }
        steps.push({...base, action: 'create', what: `create bucket ${r.bucket}`, why: f.minio ? 'does not exist' : 'MinIO is not answering yet', run: {type: 'exec', commands: [waitWritable(r.mc), makeBucket(r.mc, r.bucket)]}})
        break
      }
      case 'minio-user': {
        const m = f.minio
        const u = m?.users[r.user]
        const extra = u?.policies.filter((p) => p !== r.policy) ?? []
        const problems = !m
          ? ['MinIO is not answering yet']
          : !u
            ? ['does not exist']
            : [
                ...(m.policies[r.policy] === undefined ? [`policy ${r.policy} does not exist`] : m.policies[r.policy] !== canonicalPolicy(r.policyDocument) ? [`policy ${r.policy} differs`] : []),
                ...(u.policies.includes(r.policy) ? [] : [`policy ${r.policy} is not attached`]),
                ...(extra.length ? [`it also has ${extra.join(', ')}`] : []),
                ...(u.enabled ? [] : ['it is disabled']),
                ...(u.enabled && !u.secretWorks ? ['its secret key does not work'] : []),
              ]
        if (!problems.length) {
          unchanged++
          break
        }
        steps.push({
          ...base,
          action: u ? 'update' : 'create',
          what: `set MinIO user ${r.user} (${r.rights})`,
          why: problems.join('; '),
          run: {
            type: 'exec',
            commands: [
              waitWritable(r.mc),
              putPolicy(r.mc, r.policy, r.policyDocument),
              putUser(r.mc, r.user, r.secret),
              attachPolicy(r.mc, r.policy, r.user),
              ...extra.map((p) => detachPolicy(r.mc, p, r.user)),
            ],
          },
        })
        break
      }
      case 'service': {
        const s = f.services[r.unit]
        const enableUnit = r.enableUnit ?? r.unit
        const enabled = f.services[enableUnit]?.enabled ?? false
        const changed = changedFilesFor.get(`${r.host}:${r.unit}`) ?? []
        const pending = f.pendingRestarts.includes(r.unit)
        const after = dependsOn(r.component)
        const newVersion = upgraded.has(`${r.host}:${r.component}`)
        // A reload suffices when every changed file is one the unit re-reads on reload, and a change
        // left pending by an interrupted run can only have come from such files.
        const reloadSuffices = changed.every((p) => reloadableFiles.has(`${r.host}:${p}`)) && (!pending || !restartFiles.has(`${r.host}:${r.unit}`))
        if (r.reload && s?.active === true && (changed.length || pending) && reloadSuffices && !newVersion && !installsOn.has(r.host)) {
          const why = changed.length ? `${changed.join(', ')} changed (picked up without a restart)` : 'a config change from an interrupted run is not live yet'
          steps.push({...base, after, action: 'reload', what: `reload ${r.unit}`, why, run: {type: 'exec', commands: [...r.reload, clearPendingRestart(r.unit)]}})
        } else if (changed.length || pending || newVersion || (installsOn.has(r.host) && s?.active !== false)) {
          const why = changed.length
            ? `${changed.join(', ')} changed`
            : pending
              ? 'a config change from an interrupted run is not live yet'
              : newVersion
                ? 'upgraded: run the new version'
                : 'freshly installed: start with the managed configuration'
          steps.push({...base, after, action: 'restart', what: `restart ${r.unit}`, why, run: {type: 'exec', commands: restartService(r.unit, enableUnit, r.ready)}})
        } else if (!s?.active) {
          steps.push({...base, after, action: 'start', what: `start ${r.unit}`, why: s?.loaded ? 'not running' : 'not installed yet', run: {type: 'exec', commands: restartService(r.unit, enableUnit, r.ready)}})
        } else if (!enabled) {
          steps.push({...base, action: 'enable', what: `enable ${enableUnit} at boot`, why: 'disabled', run: {type: 'exec', commands: [enableService(enableUnit)]}})
        } else unchanged++
        break
      }
      case 'pg-role': {
        const now = f.pg?.roles[r.role]
        if (now === r.verifier) {
          unchanged++
          break
        }
        const why = f.pg === null ? 'PostgreSQL is not running yet' : now === undefined ? 'role does not exist' : 'password differs'
        steps.push({...base, action: now === undefined ? 'create' : 'update', what: `set PostgreSQL role ${r.role} (login, scram-sha-256)`, why, run: {type: 'exec', commands: [ensurePgRole(r.role, r.verifier)]}})
        break
      }
      case 'pg-database': {
        const owner = f.pg?.databases[r.database]
        if (owner === r.owner) {
          unchanged++
          break
        }
        const why = f.pg === null ? 'PostgreSQL is not running yet' : owner === undefined ? 'database does not exist' : `owned by ${owner}`
        steps.push({...base, action: owner === undefined ? 'create' : 'update', what: `create database ${r.database} owned by ${r.owner}`, why, run: {type: 'exec', commands: [ensurePgDatabase(r.database, r.owner)]}})
        break
      }
      case 'sql-schema': {
        const db = facts[r.dbHost]
        if (db?.pg?.tables.includes(`${r.database}.${r.probeTable}`)) {
          unchanged++
          break
        }
        steps.push({
          ...base,
          after: r.after,
          action: 'load',
          what: `load ${r.sourcePath} into database ${r.database} on ${r.dbHost}`,
          why: db?.pg ? `table ${r.probeTable} does not exist` : 'database is not ready yet',
          run: {
            type: 'pipe',
            source: {host: r.host, path: r.sourcePath, component: r.component},
            target: {host: r.dbHost, command: {...loadSchema(r.database, r.role), component: 'postgresql'}},
          },
        })
        break
      }
      case 'xmpp-account': {
        const jid = `${r.user}@${r.domain}`
        if (f.xmppAccounts[jid] === true) {
          unchanged++
          break
        }
        steps.push({
          ...base,
          after: dependsOn(r.component),
          action: f.xmppAccounts[jid] === false ? 'update' : 'create',
          what: `register XMPP account ${jid}`,
          why: jid in f.xmppAccounts ? 'missing or its password differs' : 'the IM server is not answering yet',
          run: {type: 'xmpp-account', user: r.user, domain: r.domain, password: r.password, apiPort: r.apiPort},
        })
        break
      }
      case 'ejabberd-cluster': {
        if (f.ejabberdCluster?.includes(r.seed)) {
          unchanged++
          break
        }
        steps.push({
          ...base,
          action: 'update',
          what: `join ejabberd node ${r.node} to the cluster of ${r.seed}`,
          why: f.ejabberdCluster ? `its cluster is ${f.ejabberdCluster.join(', ')}` : 'the node is not running yet: its cluster is unknown',
          run: {type: 'exec', commands: [joinEjabberdCluster(r.seed)]},
        })
        break
      }
      case 'network': {
        if (f.engine?.networks.includes(r.name)) {
          unchanged++
          break
        }
        steps.push({...base, action: 'create', what: `create network ${r.name}`, why: 'the cluster has no network on this engine yet', run: {type: 'engine', op: {op: 'network', name: r.name}}})
        break
      }
      case 'image': {
        if (f.engine?.images.includes(r.tag)) {
          unchanged++
          break
        }
        if (r.fromBundle) {
          steps.push({...base, action: 'load', what: `load image ${r.tag} from the bundle`, why: 'not on this engine', run: {type: 'engine', op: {op: 'load-image', tag: r.tag}}})
          break
        }
        steps.push({
          ...base,
          action: 'build',
          what: `build image ${r.tag} (${[
            ...(r.packages.length ? [`${r.packages.map((p) => p.name).join(' ')} from Debian`] : []),
            ...(r.artifacts ?? []).map((a) => `${a.name} ${a.version} from the artifact cache`),
          ].join(', ')})`,
          why: 'not on this engine',
          run: {type: 'engine', op: {op: 'build-image', tag: r.tag, contextDir: r.contextDir, contextFiles: r.contextFiles, ...(r.artifacts ? {artifacts: r.artifacts} : {})}},
        })
        break
      }
      case 'container': {
        const now = f.engine?.containers[r.name]
        if (now && now.configHash === r.configHash) {
          unchanged++
          break
        }
        recreated.add(`${r.host}:${r.name}`)
        const changedFiles = now ? r.files.filter((x) => !(now.files[x.path]?.content.equals(Buffer.from(x.content)) ?? false)) : r.files
        const diffs = changedFiles.map((x) => shownDiff(x, now?.files[x.path]?.content.toString('utf8') ?? '', redact))
        steps.push({
          ...base,
          action: now ? 'recreate' : 'create',
          what: `${now ? 'recreate' : 'create'} container ${r.name}${now ? ' (its volumes are kept)' : ''}`,
          why: now ? (changedFiles.length ? `${changedFiles.map((x) => x.path).join(', ')} changed` : 'image or settings changed') : 'does not exist',
          ...(diffs.length ? {diff: diffs.join('\n')} : {}),
          run: {type: 'engine', op: {op: 'create-container', spec: r.spec, files: r.files, replace: Boolean(now)}},
        })
        break
      }
      case 'firewall': {
        const loaded = f.firewall ?? null
        const enabled = f.services[r.unit]?.enabled ?? false
        if (r.table === null) {
          if (loaded === null && !enabled) {
            unchanged++
            break
          }
          const cmds = removeFirewall(r.unit).filter((c) => (c.argv[0] === 'nft' ? loaded !== null : enabled))
          steps.push({...base, action: 'remove', what: 'remove the firewall (table inet imctl, its boot unit)', why: 'firewall.enabled is false', run: {type: 'exec', commands: cmds}})
          break
        }
        const problem = firewallProblem(loaded, r.table)
        // imctl must still get in next time: its own SSH source has to be an admin source.
        if (problem && f.sshClient && !sourceAllows(r.adminSources, f.sshClient)) {
          blockers.push(`${r.host}: imctl reaches this host's SSH from ${f.sshClient}, which firewall.adminSources (${r.adminSources.join(', ')}) leaves out: the rules would lock imctl out. Add that address or its network to adminSources`)
          break
        }
        if (!problem && enabled) {
          unchanged++
          break
        }
        steps.push({
          ...base,
          action: problem ? 'load' : 'enable',
          what: problem ? `load the firewall rules from ${r.path}` : `enable ${r.unit} at boot`,
          why: problem ?? 'disabled',
          ...(problem ? {diff: fileDiff('table inet imctl', loaded ?? '', r.table)} : {}),
          run: {type: 'exec', commands: [...(problem ? [loadFirewall(r.path)] : []), ...(enabled ? [] : [enableService(r.unit)])]},
        })
        break
      }
      case 'container-running': {
        const now = f.engine?.containers[r.name]
        const fresh = recreated.has(`${r.host}:${r.name}`)
        if (!fresh && now?.running) {
          unchanged++
          break
        }
        steps.push({
          ...base,
          after: dependsOn(r.component),
          action: 'start',
          what: `start container ${r.name}`,
          why: fresh ? 'new container' : 'not running',
          run: {type: 'engine', op: {op: 'start-container', name: r.name, ready: {...readyCheck(r.component), component: r.component}}},
        })
        break
      }
    }
  }
  // On an engine a command runs in its component's container (ignored over SSH).
  for (const st of steps) {
    if (st.run.type === 'exec') st.run = {...st.run, commands: st.run.commands.map((cmd) => ({component: st.component, ...cmd}))}
  }

  // Containers of this cluster that no component wants any more: removed, their volumes kept.
  // First: they wait for nothing, and a removal listed after a step that waits for its
  // component (ejabberd's start after postgresql moved off the engine) would never run.
  const removals: Step[] = []
  for (const [host, f] of Object.entries(facts)) {
    for (const [name, c] of Object.entries(f.engine?.containers ?? {})) {
      if (resources.some((r) => r.kind === 'container' && r.host === host && r.name === name)) continue
      removals.push({
        id: `${host}:remove:${name}`,
        host,
        component: c.component as ComponentName,
        after: [],
        action: 'remove',
        what: `remove container ${name}${opts.purgeData ? ' and its volumes' : ' (its volumes are kept)'}`,
        why: `${c.component} is no longer placed on ${host}`,
        run: {type: 'engine', op: {op: 'remove-container', name, purgeVolumes: opts.purgeData ?? false}},
      })
    }
  }
  return {steps: [...removals, ...steps], unchanged, blockers}
}

// ---- action builders: commands that change a host, as data ----

/**
 * Joins this host's ejabberd node to `seed`'s cluster with ejabberd's own `join_cluster`
 * (it copies the seed's Mnesia schema and restarts ejabberd inside the running VM). It waits
 * for both nodes first and does nothing when the node is a member already, so a re-run is safe.
 */
export function joinEjabberdCluster(seed: string): RemoteCommand {
  return {
    argv: shScript(
      'ejabberdctl started >/dev/null || exit 1\n' +
        'for i in $(seq 1 60); do ejabberdctl ping "$1" 2>/dev/null | grep -q pong && break; sleep 2; done\n' +
        'if ejabberdctl list_cluster | grep -qxF "\'$1\'"; then exit 0; fi\n' +
        'ejabberdctl join_cluster "$1" && ejabberdctl list_cluster | grep -qxF "\'$1\'"',
      [seed],
    ),
    root: true,
    description: `join the ejabberd cluster of ${seed}`,
  }
}

export function installPackages(names: string[], suites: [suite: string, names: string[]][] = []): RemoteCommand[] {
  return [
    // Finish a dpkg run that an interrupted install left half-done; a no-op otherwise.
    // (retried while another dpkg, e.g. one left by a killed run, still holds the lock).
    {
      argv: shScript('for i in $(seq 1 60); do DEBIAN_FRONTEND=noninteractive dpkg --configure -a --force-confold && exit 0; sleep 2; done; exit 1'),
      root: true,
      description: 'finish any interrupted package configuration',
    },
    {argv: ['apt-get', 'update', '-qq', '-o', 'DPkg::Lock::Timeout=300'], root: true, description: 'refresh the package lists'},
    ...(names.length ? [aptInstall(names)] : []),
    // A suite beyond the OS's own: -t lets apt take from it what these packages depend on (and nothing else).
    ...suites.map(([suite, pkgs]) => aptInstall(pkgs, suite)),
  ]
}

function aptInstall(names: string[], suite?: string): RemoteCommand {
  return {
    argv: ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Options::=--force-confold', ...(suite ? ['-t', suite] : []), ...names],
    root: true,
    description: `install ${names.join(' ')}${suite ? ` from ${suite}` : ''}`,
  }
}

/**
 * Brings packages to their pins, up or down: for each, the newest version apt offers that
 * matches its glob, installed as `name=version` (with `-t SUITE` for a suite's packages, so
 * their dependencies may come from it too); then each installed version is checked.
 */
export function upgradePackages(packages: PinnedPackage[]): RemoteCommand[] {
  const groups = new Map<string, PinnedPackage[]>()
  for (const p of packages) groups.set(p.suite ?? '', [...(groups.get(p.suite ?? '') ?? []), p])
  const [configure, update] = installPackages([])
  return [
    configure!,
    update!,
    ...[...groups].map(([suite, pkgs]): RemoteCommand => ({
      argv: shScript(RESOLVE_AND_INSTALL, [suite, ...pkgs.flatMap((p) => [p.name, p.version])]),
      root: true,
      description: `install ${pkgs.map((p) => `${p.name} ${p.version}`).join(', ')}${suite ? ` from ${suite}` : ''}`,
    })),
  ]
}

/** Args: SUITE ('' for the OS's own), then NAME GLOB pairs. A glob's `*` is matched as in a shell case pattern. */
const RESOLVE_AND_INSTALL = String.raw`set -f; suite=$1; shift; pairs="$*"; specs=""
while [ $# -gt 1 ]; do
  n=$1; g=$2; shift 2; best=""
  for v in $(apt-cache madison "$n" | awk -F'|' '{gsub(/ /, "", $2); print $2}'); do
    case "$v" in $g) if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi;; esac
  done
  [ -n "$best" ] || { echo "apt offers no $n matching $g; on offer: $(apt-cache madison "$n" | awk -F'|' '{gsub(/ /, "", $2); printf "%s ", $2}')" >&2; exit 1; }
  specs="$specs $n=$best"
done
t=""; if [ -n "$suite" ]; then t="-t $suite"; fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold $t $specs || exit 1
set -- $pairs
while [ $# -gt 1 ]; do
  v=$(dpkg-query -W -f "\${Version}" "$1")
  case "$v" in $2) ;; *) echo "$1 is $v after the install, not $2" >&2; exit 1;; esac
  shift 2
done`

/** Atomic write: temp file beside the target, owner and mode set, then rename. */
export function writeFile(path: string, content: string, owner: string, group: string, mode: string, restartFor: string[], daemonReload = false): RemoteCommand[] {
  const cmds: RemoteCommand[] = []
  if (restartFor.length) {
    // Remember the restart before the write, so an interrupted run still restarts next time.
    cmds.push({argv: shScript('mkdir -p "$1" && cd "$1" && shift && touch -- "$@"', [PENDING_DIR, ...restartFor]), root: true, description: `mark ${restartFor.join(', ')} for restart`})
  }
  cmds.push({...atomicWrite(path, owner, group, mode), stdin: content})
  if (daemonReload) cmds.push({argv: ['systemctl', 'daemon-reload'], root: true, description: 'make systemd re-read its unit files'})
  return cmds
}

export function createSystemUser(user: string, home: string): RemoteCommand {
  return {
    argv: ['useradd', '--system', '--user-group', '--home-dir', home, '--no-create-home', '--shell', '/usr/sbin/nologin', user],
    root: true,
    description: `create system user ${user} (no login)`,
  }
}

export function ensureDirectory(path: string, owner: string, group: string, mode: string): RemoteCommand {
  return {argv: ['install', '-d', '-o', owner, '-g', group, '-m', mode, path], root: true, description: `create ${path}`}
}

/** Writes stdin to `path` atomically (temp file beside it, owner and mode set, then rename); add stdin or stdinStream. */
export function atomicWrite(path: string, owner: string, group: string, mode: string): RemoteCommand {
  return {
    argv: shScript('t="$1.imctl-tmp" && umask 077 && cat > "$t" && chown "$2" "$t" && chmod "$3" "$t" && mv -f "$t" "$1"', [path, `${owner}:${group}`, mode]),
    root: true,
    description: `write ${path}`,
  }
}

export function restartService(unit: string, enableUnit: string, ready?: RemoteCommand): RemoteCommand[] {
  return [
    enableService(enableUnit),
    {argv: ['systemctl', 'restart', unit], root: true, description: `restart ${unit}`},
    {argv: ['systemctl', 'is-active', '--quiet', unit], root: true, description: `check that ${unit} is running`},
    ...(ready ? [ready] : []),
    clearPendingRestart(unit),
  ]
}

export function clearPendingRestart(unit: string): RemoteCommand {
  return {argv: ['rm', '-f', `${PENDING_DIR}/${unit}`], root: true, description: `clear the pending restart of ${unit}`}
}

export function enableService(unit: string): RemoteCommand {
  return {argv: ['systemctl', 'enable', '--quiet', unit], root: true, description: `enable ${unit} at boot`}
}

export function ensurePgRole(role: string, verifier: string): RemoteCommand {
  return {
    argv: ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'],
    stdin:
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${sqlLiteral(role)}) THEN CREATE ROLE ${sqlIdent(role)} LOGIN; END IF; END $$;\n` +
      `ALTER ROLE ${sqlIdent(role)} LOGIN PASSWORD ${sqlLiteral(verifier)};\n`,
    asUser: 'postgres',
    description: `create or update role ${role}`,
  }
}

export function ensurePgDatabase(database: string, owner: string): RemoteCommand {
  return {
    argv: ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'],
    stdin:
      `SELECT 'CREATE DATABASE ${sqlIdent(database)} OWNER ${sqlIdent(owner)} ENCODING ''UTF8'' TEMPLATE template0' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${sqlLiteral(database)})\\gexec\n` +
      `ALTER DATABASE ${sqlIdent(database)} OWNER TO ${sqlIdent(owner)};\n` +
      `REVOKE ALL ON DATABASE ${sqlIdent(database)} FROM PUBLIC;\n`,
    asUser: 'postgres',
    description: `create database ${database}`,
  }
}

/** Loads a schema from stdin in one transaction, as the owning role, so a cut run leaves nothing half-made. */
export function loadSchema(database: string, role: string): RemoteCommand {
  return {
    argv: ['sh', '-c', '{ printf "SET ROLE %s;\\n" "$1"; cat; } | psql -X -q -1 -v ON_ERROR_STOP=1 -d "$2"', 'sh', sqlIdent(role), database],
    asUser: 'postgres',
    description: `load the schema into ${database} as ${role}`,
  }
}

/**
 * A secret file on a host can hold a value redact() does not know (the live password
 * before a rotation is applied, or one set by hand): mask it wherever a desired line
 * carries a secret, so the plan shows that the line changes but not the value.
 */
function maskStaleSecrets(before: string, desired: string, redact: (text: string) => string): string {
  const desiredLines = new Set(desired.split('\n'))
  const frames = desired.split('\n').flatMap((line) => {
    const shown = redact(line)
    if (shown === line) return []
    let head = 0
    while (line[head] === shown[head]) head++
    let tail = 0
    while (tail < line.length - head && line[line.length - 1 - tail] === shown[shown.length - 1 - tail]) tail++
    return head ? [{prefix: line.slice(0, head), suffix: line.slice(line.length - tail)}] : []
  })
  return before
    .split('\n')
    .map((line) => {
      if (desiredLines.has(line)) return line // redact() masks it the same on both sides
      const f = frames.find((x) => line.startsWith(x.prefix) && line.endsWith(x.suffix))
      return f ? `${f.prefix}********${f.suffix}` : line
    })
    .join('\n')
}

/** A file's planned change as people see it: no secret value, current or stale. */
function shownDiff(file: FileResource, before: string, redact: (text: string) => string): string {
  return redact(fileDiff(file.path, file.secret ? maskStaleSecrets(before, file.content, redact) : before, file.content))
}

export function fileDiff(path: string, before: string, after: string): string {
  return createTwoFilesPatch(path, path, before, after, 'now', 'planned', {context: 2})
}

export {STATE_DIR}
