/**
 * The automatic platform build args (Dockerfile reference, "Automatic
 * platform ARGs in the global scope"), from `os/arch[/variant]` strings.
 */
export function automaticPlatformArgs (target: string, build: string): Map<string, string> {
  const args = new Map<string, string>()
  for (const [prefix, platform] of [['TARGET', target], ['BUILD', build]] as const) {
    const [os = '', arch = '', variant = ''] = platform.split('/')
    args.set(`${prefix}PLATFORM`, platform)
    args.set(`${prefix}OS`, os)
    args.set(`${prefix}ARCH`, arch)
    args.set(`${prefix}VARIANT`, variant)
  }
  return args
}
