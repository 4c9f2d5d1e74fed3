// The handler for each message clients send. `iocpgen generate` adds entries for new
// messages; the Handlers type makes a stale or missing entry a compile error.
import type {Handlers} from '../generated/handlers.js'
import {onLogin} from './login.js'
import {onPrivateSend} from './private-send.js'
import {onGroupJoin} from './group-join.js'
import {onGroupLeave} from './group-leave.js'
import {onGroupSay} from './group-say.js'
import {onPing} from './ping.js'
import {onLogout} from './logout.js'

export const handlers: Handlers = {
  Login: onLogin,
  PrivateSend: onPrivateSend,
  GroupJoin: onGroupJoin,
  GroupLeave: onGroupLeave,
  GroupSay: onGroupSay,
  Ping: onPing,
  Logout: onLogout,
}
