/**
 * Installing Debian packages from an offline bundle's repository already uploaded
 * to a host: apt sees ONLY that folder (its own sources file and lists folder), so
 * no network source is ever contacted, whatever the host's own sources say.
 * Pure builders: they return commands, the transport runs them.
 */
import {posix} from 'node:path'
import type {RemoteCommand} from '../transport/command.js'
import {atomicWrite, installPackages} from './planner.js'

/** imctl's own apt state for bundle installs; the host's sources and lists are never touched. */
export const OFFLINE_APT_DIR = '/var/lib/imctl/offline-apt'
export const OFFLINE_SOURCES = `${OFFLINE_APT_DIR}/sources.list`
export const OFFLINE_LISTS = `${OFFLINE_APT_DIR}/lists`

/** The one apt source: the uploaded flat repository (made and hashed by imctl; apt checks Packages against Release). */
export function offlineSourcesList(repoDir: string): string {
  return `deb [trusted=yes] file:${absolute(repoDir)} ./\n`
}

/** apt options that replace every configured source by the bundle's and keep its lists apart. */
export function offlineAptOptions(): string[] {
  return [
    '-o', `Dir::Etc::sourcelist=${OFFLINE_SOURCES}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${OFFLINE_LISTS}`,
    '-o', 'APT::Get::List-Cleanup=0',
    '-o', 'Acquire::Languages=none',
  ]
}

/** Points imctl's apt state at the repository and reads its index (and nothing else). */
export function useBundleRepository(repoDir: string): RemoteCommand[] {
  return [
    {argv: ['mkdir', '-p', `${OFFLINE_LISTS}/partial`], root: true, description: `prepare apt state for the bundle repository in ${OFFLINE_APT_DIR}`},
    {...atomicWrite(OFFLINE_SOURCES, 'root', 'root', '0644'), stdin: offlineSourcesList(repoDir), description: `point ${OFFLINE_SOURCES} at ${absolute(repoDir)}`},
    {argv: ['apt-get', 'update', '-qq', '-o', 'DPkg::Lock::Timeout=300', ...offlineAptOptions()], root: true, description: `read the bundle repository's index in ${absolute(repoDir)}`},
  ]
}

/**
 * The offline twin of the planner's installPackages: finish an interrupted dpkg run,
 * read the bundle repository's index, install the packages from it alone.
 */
export function installPackagesOffline(repoDir: string, names: string[]): RemoteCommand[] {
  // The same repair step the online install starts with.
  const [finishDpkg] = installPackages(names)
  return [
    finishDpkg!,
    ...useBundleRepository(repoDir),
    {
      argv: [
        'env', 'DEBIAN_FRONTEND=noninteractive',
        'apt-get', 'install', '-y', '-qq', '--no-install-recommends',
        '-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Options::=--force-confold',
        ...offlineAptOptions(),
        ...names,
      ],
      root: true,
      description: `install ${names.join(' ')} from the bundle repository`,
    },
  ]
}

/** Removes imctl's offline apt state (the uploaded repository itself is the caller's). */
export function forgetBundleRepository(): RemoteCommand {
  return {argv: ['rm', '-rf', '--', OFFLINE_APT_DIR], root: true, description: `remove ${OFFLINE_APT_DIR}`}
}

function absolute(dir: string): string {
  if (!posix.isAbsolute(dir)) throw new Error(`bug: the bundle repository must be an absolute path on the host, got ${JSON.stringify(dir)}`)
  return posix.normalize(dir).replace(/\/$/, '')
}
