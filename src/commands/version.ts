import {BaseCommand} from '../util/command.js'

export default class Version extends BaseCommand {
  static override summary = 'Print the version of iocpgen, the platform and Node (as --version and -v do).'

  static override enableJsonFlag = true

  async run(): Promise<{version: string; platform: string; arch: string; node: string}> {
    await this.parse(Version)
    this.log(this.config.userAgent)
    return {version: this.config.version, platform: this.config.platform, arch: this.config.arch, node: process.version}
  }
}
