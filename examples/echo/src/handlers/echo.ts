import type {Handler} from '../generated/handlers.js'

/** Echo (id 1, both): every frame goes back to its sender as it came. */
export const onEcho: Handler<'Echo'> = (session, message) => {
  session.send('Echo', message)
}
